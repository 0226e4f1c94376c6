//! Tests of the configuration: the schema, the settings table, the overrides.

use super::checks::check_workers;
use super::*;
use crate::forms::parse_hex;

const LAB: &str = include_str!("../../config/lab.toml");

fn err(toml: &str) -> ConfigError {
    match Config::from_toml_str(toml) {
        Ok(c) => panic!("accepted {toml:?}: {c:?}"),
        Err(e) => e,
    }
}

/// The top-level keys of a valid document, one line each.
const TOP: [(&str, &str); 4] = [
    ("interface", "interface = \"synack-srv\""),
    ("addresses", "addresses = [\"198.18.0.1\"]"),
    ("workers", "workers = [0]"),
    ("listen", "listen = [{ port = 80, mode = \"http\" }]"),
];

/// A valid document with top-level key `key`'s line replaced by `line` (or with
/// `line` added, when `key` is not one of [`TOP`]).
fn top_with(key: &str, line: &str) -> String {
    let mut lines: Vec<&str> = TOP
        .iter()
        .map(|&(k, l)| if k == key { line } else { l })
        .collect();
    if !TOP.iter().any(|&(k, _)| k == key) {
        lines.insert(0, line);
    }
    lines.join("\n")
}

/// A valid document plus `line` in `[section]` (or at the top when `section` is "").
fn lab_with(section: &str, line: &str) -> String {
    if section.is_empty() {
        format!("{line}\n{}", top_with("", ""))
    } else {
        format!("{}\n[{section}]\n{line}\n", top_with("", ""))
    }
}

#[test]
fn default_toml_parses_into_the_documented_defaults() {
    let cfg = Config::parse_toml(DEFAULT_CONFIG).expect("default.toml parses");
    assert_eq!(cfg, Config::default());
    // The values written in the field docs.
    assert_eq!(cfg.workers, vec![0]);
    assert_eq!(cfg.xdp.mode, XdpMode::Auto);
    assert_eq!(cfg.xdp.attach, XdpAttach::Exclusive);
    assert_eq!((cfg.xdp.frame_size, cfg.xdp.frame_count), (2048, 4096));
    assert_eq!((cfg.xdp.ring_size, cfg.xdp.batch_size), (2048, 64));
    assert!(!cfg.xdp.busy_poll && !cfg.xdp.standalone);
    assert_eq!(cfg.xdp.zerocopy, ZeroCopy::Auto);
    assert_eq!(cfg.xdp.worker_priority, 0);
    let t = &cfg.tcp;
    assert_eq!((t.mss, t.window, t.window_scale), (1460, 262_144, 7));
    assert!(t.timestamps && t.verify_checksums);
    assert_eq!((t.time_wait_secs, t.idle_timeout_secs), (60, 300));
    assert_eq!(
        (t.rto_initial_ms, t.rto_max_ms, t.max_retries),
        (1000, 60_000, 6)
    );
    assert_eq!((t.table_capacity, t.table_full), (262_144, FullPolicy::Rst));
    assert_eq!(t.challenge_ack_limit, 1000);
    assert_eq!((t.persist_timeout_secs, t.close_timeout_secs), (120, 60));
    assert_eq!(cfg.http.header_timeout_secs, 20);
    assert_eq!(t.cookie_secret, None);
    assert_eq!((t.buffers, t.buffer_size), (4096, 4096));
    assert_eq!(cfg.http.status, 200);
    assert_eq!(cfg.http.body, "synack\n");
    assert_eq!(cfg.http.content_type, "text/plain");
    assert_eq!(cfg.steering.rss_key, KeyChoice::Nic);
    assert_eq!(cfg.steering.handoff_queue, 1024);
    assert_eq!(cfg.ops, OpsSettings::default());
    assert_eq!(cfg.ops.stats_interval_ms, 1000);
}

#[test]
fn default_toml_alone_demands_the_interface() {
    let e = err(DEFAULT_CONFIG);
    assert_eq!(e.field(), Some("interface"));
    assert!(e.to_string().contains("--interface eth1"), "{e}");
}

#[test]
fn default_toml_with_its_commented_lab_values_validates() {
    // The commented-out example in default.toml must itself be valid.
    let unset = ["interface = \"\"", "addresses = []", "listen = []"];
    let uncommented: String = DEFAULT_CONFIG
        .lines()
        .filter(|l| !unset.contains(l))
        .map(|l| l.strip_prefix("#> ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let cfg = Config::from_toml_str(&uncommented).expect("uncommented example is valid");
    assert_eq!(cfg.interface, "synack-srv");
    assert_eq!(cfg.listen.len(), 2);
}

#[test]
fn lab_toml_is_the_veth_lab_server() {
    let cfg = Config::from_toml_str(LAB).expect("lab.toml is valid");
    assert_eq!(cfg.interface, "synack-srv");
    assert_eq!(
        cfg.addresses,
        vec![
            "198.18.0.1".parse::<IpAddr>().unwrap(),
            "2001:2::1".parse().unwrap()
        ]
    );
    let want = [
        (80, ListenMode::Http),
        (7, ListenMode::Echo),
        (9, ListenMode::Discard),
        (13, ListenMode::Close),
    ];
    let got: Vec<_> = cfg.listen.iter().map(|l| (l.port, l.mode)).collect();
    assert_eq!(got, want);
    assert_eq!(cfg.workers, vec![0]);
    // Everything else at its default.
    assert_eq!(cfg.tcp, TcpSettings::default());
    assert_eq!(cfg.xdp, XdpSettings::default());
}

/// Every field, an invalid value: (section, line, expected path).
const INVALID: &[(&str, &str, &str)] = &[
    ("", "interface = \"eth/1\"", "interface"),
    ("", "interface = \"a-very-long-ifname\"", "interface"),
    ("", "interface = \"eth 1\"", "interface"),
    ("", "interface = 7", "interface"),
    ("", "addresses = [\"224.0.0.1\"]", "addresses"),
    ("", "addresses = [\"0.0.0.0\"]", "addresses"),
    ("", "addresses = [\"::\"]", "addresses"),
    ("", "addresses = [\"ff02::1\"]", "addresses"),
    ("", "addresses = [\"255.255.255.255\"]", "addresses"),
    (
        "",
        "addresses = [\"198.18.0.1\", \"198.18.0.1\"]",
        "addresses",
    ),
    ("", "addresses = [\"not-an-ip\"]", "addresses"),
    ("", "addresses = []", "addresses"),
    ("", "workers = \"9999\"", "workers"),
    ("", "workers = \"0,0\"", "workers"),
    ("", "workers = \"3-1\"", "workers"),
    ("", "workers = \"0,,1\"", "workers"),
    ("", "workers = []", "workers"),
    ("", "workers = [-1]", "workers"),
    ("", "workers = true", "workers"),
    ("", "listen = []", "listen"),
    ("", "listen = [{ port = 0 }]", "listen.port"),
    ("", "listen = [[80, \"http\"]]", "listen"),
    ("", "listen = \"80\"", "listen"),
    (
        "",
        "listen = [{ port = 80 }, { port = 80, mode = \"echo\" }]",
        "listen",
    ),
    ("", "listen = [{ port = 70000 }]", "listen.port"),
    ("", "listen = [{ mode = \"echo\" }]", "listen.port"),
    (
        "",
        "listen = [{ port = 80, mode = \"bogus\" }]",
        "listen.mode",
    ),
    ("xdp", "mode = \"fast\"", "xdp.mode"),
    ("xdp", "attach = \"share\"", "xdp.attach"),
    ("xdp", "frame_size = 3000", "xdp.frame_size"),
    ("xdp", "frame_count = 1000", "xdp.frame_count"),
    ("xdp", "frame_count = 32", "xdp.frame_count"),
    ("xdp", "ring_size = 100", "xdp.ring_size"),
    ("xdp", "ring_size = 4096", "xdp.ring_size"),
    ("xdp", "batch_size = 0", "xdp.batch_size"),
    ("xdp", "batch_size = 257", "xdp.batch_size"),
    ("xdp", "busy_poll = \"yes\"", "xdp.busy_poll"),
    ("xdp", "zerocopy = \"yes\"", "xdp.zerocopy"),
    ("xdp", "worker_priority = 100", "xdp.worker_priority"),
    ("", "xdp = 5", "xdp"),
    ("", "tcp = \"fast\"", "tcp"),
    ("", "http = []", "http"),
    ("", "steering = 1", "steering"),
    ("", "ops = true", "ops"),
    ("xdp", "standalone = 1", "xdp.standalone"),
    ("xdp", "syn_offload = \"yes\"", "xdp.syn_offload"),
    ("tcp", "mss = 500", "tcp.mss"),
    ("tcp", "mss = 9000", "tcp.mss"),
    ("tcp", "mss = 70000", "tcp.mss"),
    ("tcp", "window = 0", "tcp.window"),
    ("tcp", "window = 1073741824", "tcp.window"),
    ("tcp", "window_scale = 15", "tcp.window_scale"),
    ("tcp", "timestamps = \"on\"", "tcp.timestamps"),
    ("tcp", "fin_with_ack = 1", "tcp.fin_with_ack"),
    ("tcp", "time_wait_secs = 601", "tcp.time_wait_secs"),
    ("tcp", "time_wait_secs = -1", "tcp.time_wait_secs"),
    ("tcp", "idle_timeout_secs = 604801", "tcp.idle_timeout_secs"),
    ("tcp", "rto_initial_ms = 100", "tcp.rto_initial_ms"),
    ("tcp", "rto_max_ms = 500", "tcp.rto_max_ms"),
    ("tcp", "rto_max_ms = 120001", "tcp.rto_max_ms"),
    ("tcp", "max_retries = 0", "tcp.max_retries"),
    ("tcp", "max_retries = 31", "tcp.max_retries"),
    (
        "tcp",
        "persist_timeout_secs = 86401",
        "tcp.persist_timeout_secs",
    ),
    ("tcp", "close_timeout_secs = 0", "tcp.close_timeout_secs"),
    ("tcp", "close_timeout_secs = 3601", "tcp.close_timeout_secs"),
    ("tcp", "table_capacity = 0", "tcp.table_capacity"),
    ("tcp", "table_capacity = 16777217", "tcp.table_capacity"),
    ("tcp", "table_full = \"reject\"", "tcp.table_full"),
    ("tcp", "challenge_ack_limit = 0", "tcp.challenge_ack_limit"),
    ("tcp", "reset_limit = -1", "tcp.reset_limit"),
    ("tcp", "reset_limit = 4294967296", "tcp.reset_limit"),
    ("tcp", "verify_checksums = 0", "tcp.verify_checksums"),
    ("tcp", "cookie_secret = \"xyz\"", "tcp.cookie_secret"),
    (
        "tcp",
        "cookie_secret = \"0011223344556677\"",
        "tcp.cookie_secret",
    ),
    ("tcp", "buffers = 0", "tcp.buffers"),
    ("tcp", "buffer_size = 511", "tcp.buffer_size"),
    ("tcp", "buffer_size = 65536", "tcp.buffer_size"),
    ("http", "status = 99", "http.status"),
    ("http", "status = 600", "http.status"),
    (
        "http",
        "header_timeout_secs = 3601",
        "http.header_timeout_secs",
    ),
    ("http", "body = 5", "http.body"),
    ("http", "content_type = \"\"", "http.content_type"),
    (
        "http",
        "content_type = \"text/plain\\r\\nX-Evil: 1\"",
        "http.content_type",
    ),
    ("steering", "rss_key = \"6d5a\"", "steering.rss_key"),
    ("steering", "rss_key = \"6d:5a\"", "steering.rss_key"),
    ("steering", "rss_key = \"nics\"", "steering.rss_key"),
    ("steering", "handoff_queue = 15", "steering.handoff_queue"),
    (
        "steering",
        "handoff_queue = 65537",
        "steering.handoff_queue",
    ),
    ("ops", "ready_file = \"\"", "ops.ready_file"),
    ("ops", "ready_file = 3", "ops.ready_file"),
    ("ops", "stats_json = \"/tmp/\"", "ops.stats_json"),
    (
        "ops",
        "ready_file = \"/tmp/a\"\nstats_json = \"/tmp/a\"",
        "ops.stats_json",
    ),
    ("ops", "stats_interval_ms = 99", "ops.stats_interval_ms"),
    ("ops", "stats_interval_ms = 60001", "ops.stats_interval_ms"),
    ("ops", "metrics = \"nowhere\"", "ops.metrics"),
    ("ops", "metrics = 9100", "ops.metrics"),
    ("ops", "capture = \"\"", "ops.capture"),
    ("ops", "stats_json = \"/dev/null\"", "ops.stats_json"),
    ("ops", "ready_file = \"/tmp\"", "ops.ready_file"),
    ("ops", "capture_mode = \"sample:0\"", "ops.capture_mode"),
    ("ops", "capture_mode = \"some\"", "ops.capture_mode"),
    ("ops", "view = \"fancy\"", "ops.view"),
];

/// Every field, an invalid value: the error names the field path and carries a hint
/// with an example; the settings table lists exactly the leaves of the config.
#[test]
fn every_field_rejects_an_invalid_value_naming_it() {
    let cases = INVALID;
    // The settings table covers every setting and nothing else: collect all leaf paths
    // of a config with every optional value set, compare them with the table, and
    // require a case for each.
    let mut full = Config::from_toml_str(&top_with("", "")).expect("base is valid");
    full.tcp.cookie_secret = Some([1; 16]);
    full.steering.rss_key = KeyChoice::Fixed([1; 40]);
    full.ops.ready_file = Some("/tmp/r".into());
    full.ops.stats_json = Some("/tmp/s".into());
    full.ops.metrics = Some("127.0.0.1:9100".parse().unwrap());
    full.ops.capture = Some("/tmp/c.pcapng".into());
    let table = toml::Table::try_from(&full).expect("config serializes");
    let mut leaves = Vec::new();
    for (k, v) in &table {
        match v {
            toml::Value::Table(t) => leaves.extend(t.keys().map(|f| format!("{k}.{f}"))),
            toml::Value::Array(a) if a.iter().all(toml::Value::is_table) && !a.is_empty() => {
                leaves.push(k.clone());
                if let Some(toml::Value::Table(t)) = a.first() {
                    leaves.extend(t.keys().map(|f| format!("{k}.{f}")));
                }
            }
            _ => leaves.push(k.clone()),
        }
    }
    let mut sorted = leaves.clone();
    sorted.sort();
    let mut table: Vec<String> = rules::SETTINGS.iter().map(|s| s.path.to_owned()).collect();
    table.sort();
    assert_eq!(
        sorted, table,
        "the settings table lists every leaf of Config, once"
    );
    for leaf in &leaves {
        assert!(
            cases.iter().any(|&(_, _, p)| p == leaf),
            "no invalid-value case for {leaf}"
        );
    }

    for &(section, line, path) in cases {
        let doc = if section.is_empty() {
            top_with(path.split('.').next().unwrap_or(path), line)
        } else {
            lab_with(section, line)
        };
        let e = err(&doc);
        let msg = e.to_string();
        assert_eq!(e.field(), Some(path), "{line}: {msg}");
        assert!(msg.starts_with(&format!("{path}: ")), "{line}: {msg}");
        assert!(msg.contains("e.g."), "no hint for {line}: {msg}");
        assert!(!msg.contains('\n'), "multi-line message for {line}: {msg}");
        assert!(
            !matches!(&e, ConfigError::Invalid { hint, .. } if hint.starts_with("see ")),
            "generic hint for {path}"
        );
    }
}

#[test]
fn unknown_keys_are_named_with_their_path() {
    for (doc, key) in [
        (lab_with("tcp", "msss = 1460"), "tcp.msss"),
        (lab_with("", "colour = \"blue\""), "colour"),
        (lab_with("bogus", "x = 1"), "bogus"),
        (
            top_with("listen", "listen = [{ port = 80, mod = \"echo\" }]"),
            "listen.mod",
        ),
    ] {
        let e = err(&doc);
        assert!(matches!(e, ConfigError::UnknownKey { .. }), "{e}");
        assert_eq!(e.field(), Some(key), "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{key}: unknown key")), "{msg}");
    }
    let msg = err(&lab_with("tcp", "msss = 1460")).to_string();
    assert!(
        msg.contains("mss") && msg.contains("time_wait_secs"),
        "lists allowed keys: {msg}"
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = err("interface = \"eth1\"\naddresses = [\"198.18.0.1\"\n");
    match e {
        ConfigError::Syntax { line, .. } => assert!(line >= 2, "line {line}"),
        other => panic!("{other}"),
    }
    let e = err("interface = eth1\n");
    assert!(
        e.to_string()
            .starts_with("TOML syntax error at line 1, column "),
        "{e}"
    );
}

#[test]
fn workers_accepts_strings_integers_and_arrays() {
    for (line, want) in [
        ("workers = \"0\"", vec![0]),
        ("workers = 0", vec![0]),
        ("workers = [0]", vec![0]),
    ] {
        let cfg = Config::from_toml_str(&top_with("workers", line))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(cfg.workers, want);
    }
    assert_eq!(parse_cpu_list("0,2-3"), Ok(vec![0, 2, 3]));
    assert_eq!(parse_cpu_list(" 1 - 2 , 5"), Ok(vec![1, 2, 5]));
    assert!(parse_cpu_list("0-99999999").is_err());
    assert!(parse_cpu_list("").is_err());
    assert!(parse_cpu_list("a").is_err());
    assert_eq!(format_cpu_list(&[3, 0, 1, 2, 6]), "0-3,6");
    assert_eq!(check_workers(&[1], &[0, 1]), Ok(()));
    assert!(check_workers(&[2], &[0, 1])
        .unwrap_err()
        .contains("usable: 0-1"));
}

#[test]
fn hex_keys_and_secret_round_trip() {
    let secret = "00112233445566778899AABBCCDDEEFF";
    let cfg =
        Config::from_toml_str(&lab_with("tcp", &format!("cookie_secret = \"{secret}\""))).unwrap();
    let key = cfg.tcp.cookie_secret.unwrap();
    assert_eq!(key[0], 0x00);
    assert_eq!(key[15], 0xff);
    // The secret stays out of Debug and check-config output.
    assert!(!format!("{cfg:?}").contains("255"));
    assert!(!cfg
        .to_toml_redacted()
        .to_lowercase()
        .contains(&secret.to_lowercase()));

    // The symmetric key (6d:5a repeated), as ethtool -x prints it and as hex digits.
    let symmetric: Vec<u8> = [0x6d, 0x5a].repeat(20);
    let ethtool = vec!["6d:5a"; 20].join(":");
    let k = parse_hex::<40>(&ethtool, true).unwrap();
    assert_eq!(k[..], symmetric[..]);
    assert_eq!(
        parse_hex::<40>(&"6d5a".repeat(20), true).unwrap()[..],
        symmetric[..]
    );
    let cfg =
        Config::from_toml_str(&lab_with("steering", &format!("rss_key = \"{ethtool}\""))).unwrap();
    assert_eq!(cfg.steering.rss_key, KeyChoice::Fixed(k));
    assert!(parse_hex::<40>(&"6d5a".repeat(19), true).is_err());
    assert!(parse_hex::<16>("0011:2233", false).is_err());
    assert!(parse_hex::<40>(&"6d5".repeat(20), true).is_err());
}

#[test]
fn resolved_config_round_trips_through_toml() {
    let mut cfg = Config::from_toml_str(LAB).unwrap();
    cfg.steering.rss_key = KeyChoice::Fixed([0xab; 40]);
    cfg.ops.ready_file = Some("/tmp/ready".into());
    let text = cfg.to_toml_redacted();
    let back = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back, cfg);
}

#[test]
fn tcp_window_must_be_advertisable_rfc7323_2_3() {
    // RFC 7323 §2.3: the scale applies to the 16-bit window field.
    let e = err(&lab_with("tcp", "window_scale = 0"));
    assert_eq!(e.field(), Some("tcp.window"), "{e}");
    assert!(Config::from_toml_str(&lab_with("tcp", "window_scale = 0\nwindow = 65535")).is_ok());
    assert!(
        Config::from_toml_str(&lab_with("tcp", "window_scale = 14\nwindow = 1073725440")).is_ok()
    );
}

#[test]
fn mss_must_fit_the_frame() {
    assert!(Config::from_toml_str(&lab_with("tcp", "mss = 1678")).is_ok());
    assert_eq!(err(&lab_with("tcp", "mss = 1679")).field(), Some("tcp.mss"));
    let big = format!(
        "{}\n[xdp]\nframe_size = 4096\n[tcp]\nmss = 3726\n",
        top_with("", "")
    );
    assert!(Config::from_toml_str(&big).is_ok());
}

#[test]
fn overrides_replace_lists_and_name_the_flag() {
    let mut cfg = Config::from_toml_str(LAB).unwrap();
    let ov = Overrides {
        interface: Some("veth9".into()),
        addresses: vec!["198.18.0.9".into()],
        listen: vec!["8080".into(), "8081:echo".into()],
        workers: Some("0".into()),
        xdp_mode: Some(XdpMode::Generic),
        syn_offload: Some(SynOffloadMode::Off),
        xdp_attach: Some(XdpAttach::Dispatcher),
        cookie_secret: Some("ff".repeat(16)),
        ready_file: Some("/tmp/r".into()),
        stats_json: Some("/tmp/s.json".into()),
        metrics: Some("127.0.0.1:9100".into()),
        capture: Some("/tmp/c.pcapng".into()),
        capture_mode: Some(CaptureMode::Sample(10)),
        view: Some(View::Quiet),
    };
    ov.apply(&mut cfg).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.ops.metrics, Some("127.0.0.1:9100".parse().unwrap()));
    assert_eq!(cfg.ops.capture_mode, CaptureMode::Sample(10));
    assert_eq!(cfg.ops.view, View::Quiet);
    assert_eq!(cfg.xdp.syn_offload, SynOffloadMode::Off);
    assert_eq!(cfg.xdp.attach, XdpAttach::Dispatcher);
    // Enum-valued flags are parsed by clap with the type's one FromStr: what it refuses
    // becomes a flag error with the table's hint.
    for (flag, value) in [
        ("--syn-offload", "maybe"),
        ("--capture-mode", "sample:0"),
        ("--xdp-attach", "share"),
    ] {
        let problem = match flag {
            "--syn-offload" => value.parse::<SynOffloadMode>().map(drop),
            "--xdp-attach" => value.parse::<XdpAttach>().map(drop),
            _ => value.parse::<CaptureMode>().map(drop),
        }
        .unwrap_err();
        let msg = flag_error(&format!("{flag} <MODE>"), problem).to_string();
        assert!(
            msg.starts_with(&format!("{flag}: ")) && msg.contains("e.g."),
            "{msg}"
        );
    }
    let bad = Overrides {
        metrics: Some("localhost".into()),
        ..Default::default()
    };
    assert_eq!(bad.apply(&mut cfg).unwrap_err().field(), Some("--metrics"));
    assert_eq!(cfg.interface, "veth9");
    assert_eq!(cfg.addresses, vec!["198.18.0.9".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        cfg.listen,
        vec![
            Listener {
                port: 8080,
                mode: ListenMode::Discard
            },
            Listener {
                port: 8081,
                mode: ListenMode::Echo
            }
        ]
    );
    assert_eq!(cfg.xdp.mode, XdpMode::Generic);
    assert_eq!(cfg.tcp.cookie_secret, Some([0xff; 16]));
}

#[test]
fn bad_override_values_name_the_flag() {
    let bad: &[(Overrides, &str)] = &[
        (
            Overrides {
                listen: vec!["0".into()],
                ..Default::default()
            },
            "--listen",
        ),
        (
            Overrides {
                listen: vec!["80:bogus".into()],
                ..Default::default()
            },
            "--listen",
        ),
        (
            Overrides {
                listen: vec!["80".into(), "80:echo".into()],
                ..Default::default()
            },
            "--listen",
        ),
        (
            Overrides {
                workers: Some("9999".into()),
                ..Default::default()
            },
            "--workers",
        ),
        (
            Overrides {
                cookie_secret: Some("xyz".into()),
                ..Default::default()
            },
            "--cookie-secret",
        ),
        (
            Overrides {
                addresses: vec!["224.0.0.1".into()],
                ..Default::default()
            },
            "--address",
        ),
        (
            Overrides {
                addresses: vec!["1.2.3".into()],
                ..Default::default()
            },
            "--address",
        ),
        (
            Overrides {
                interface: Some("".into()),
                ..Default::default()
            },
            "--interface",
        ),
        (
            Overrides {
                ready_file: Some("".into()),
                ..Default::default()
            },
            "--ready-file",
        ),
        (
            Overrides {
                ready_file: Some("/tmp/x".into()),
                stats_json: Some("/tmp/x".into()),
                ..Default::default()
            },
            "--stats-json",
        ),
    ];
    for (ov, flag) in bad {
        let mut cfg = Config::from_toml_str(LAB).unwrap();
        let e = ov.apply(&mut cfg).expect_err(flag);
        assert_eq!(e.field(), Some(*flag), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{flag}: ")) && msg.contains("e.g."),
            "{msg}"
        );
    }
}

#[test]
fn lab_overrides_check_bounds() {
    let cpus = available_cpus();
    assert_eq!(
        LabOverrides::default().resolve().unwrap(),
        LabOptions {
            workers: if cpus.len() >= 2 {
                cpus[..2].to_vec()
            } else {
                vec![0]
            },
            ..LabOptions::default()
        }
    );
    let o = LabOverrides {
        connections: Some("10".into()),
        flood_packets: Some("0".into()),
        flood_secs: Some("1".into()),
        xdp_mode: Some(XdpMode::Native),
        syn_offload: Some(SynOffloadMode::On),
        workers: Some("0".into()),
        keep: true,
        nodes: None,
    }
    .resolve()
    .unwrap();
    assert_eq!(
        (o.connections, o.flood_packets, o.flood_secs, o.keep),
        (10, 0, 1, true)
    );
    assert_eq!(
        (o.xdp_mode, o.syn_offload),
        (XdpMode::Native, SynOffloadMode::On)
    );
    // --nodes: 2..=8, and 1000 connections per phase unless --connections is given.
    let nodes = |n: &str, c: Option<&str>| {
        LabOverrides {
            nodes: Some(n.into()),
            connections: c.map(Into::into),
            ..Default::default()
        }
        .resolve()
    };
    let o = nodes("2", None).unwrap();
    assert_eq!((o.nodes, o.connections), (2, 1000));
    assert_eq!(nodes("8", Some("50")).unwrap().connections, 50);
    for bad in ["1", "9", "two"] {
        let e = nodes(bad, None).unwrap_err().to_string();
        assert!(e.contains("--nodes") && e.contains("2..=8"), "{e}");
    }
    for (ov, flag) in [
        (
            LabOverrides {
                connections: Some("0".into()),
                ..Default::default()
            },
            "--connections",
        ),
        (
            LabOverrides {
                connections: Some("ten".into()),
                ..Default::default()
            },
            "--connections",
        ),
        (
            LabOverrides {
                flood_packets: Some("10000001".into()),
                ..Default::default()
            },
            "--flood-packets",
        ),
        (
            LabOverrides {
                flood_secs: Some("61".into()),
                ..Default::default()
            },
            "--flood-secs",
        ),
        (
            LabOverrides {
                workers: Some("9999".into()),
                ..Default::default()
            },
            "--workers",
        ),
    ] {
        let e = ov.resolve().expect_err(flag);
        assert_eq!(e.field(), Some(flag), "{e}");
    }
}

#[test]
fn default_toml_is_generated_from_the_settings_table() {
    // Regenerate with: synack check-config --print-default > config/default.toml
    let generated = rules::default_toml();
    if generated != DEFAULT_CONFIG {
        let first = generated
            .lines()
            .zip(DEFAULT_CONFIG.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "config/default.toml differs from the settings table at line {}: {:?} (table) vs {:?} (file); run synack check-config --print-default > config/default.toml",
            first + 1,
            generated.lines().nth(first),
            DEFAULT_CONFIG.lines().nth(first)
        );
    }
}

#[test]
fn every_setting_has_a_hint_with_its_allowed_values_and_example() {
    for s in rules::SETTINGS {
        let h = rules::hint(s.path);
        assert!(
            h.starts_with(&format!("use {}", s.allowed.describe())),
            "{}: {h}",
            s.path
        );
        assert!(
            h.contains(&format!("e.g. {} = {}", s.key(), s.example)),
            "{}: {h}",
            s.path
        );
        // The example itself is a valid value.
        if s.presence != rules::Presence::InList {
            let (section, line) = (s.section(), format!("{} = {}", s.key(), s.example));
            let doc = if section.is_empty() {
                top_with(s.key(), &line)
            } else {
                lab_with(section, &line)
            };
            Config::from_toml_str(&doc).unwrap_or_else(|e| panic!("example of {}: {e}", s.path));
        }
        if let Some(f) = s.flag {
            let h = rules::flag_hint(f.name);
            assert!(h.contains(&format!("e.g. {} {}", f.name, f.example)), "{h}");
        }
    }
    for r in rules::FLAG_RULES {
        let h = rules::flag_hint(r.flag.name);
        assert!(
            h.starts_with(&format!("give {}", r.allowed.describe())),
            "{h}"
        );
    }
}

#[test]
fn enum_settings_parse_through_their_one_from_str() {
    use crate::forms::Named;
    fn names<T: Named + std::fmt::Debug + std::str::FromStr<Err = String>>() {
        for (&v, &name) in T::ALL.iter().zip(T::NAMES) {
            assert_eq!(name.parse::<T>(), Ok(v));
            assert_eq!(v.name(), name);
        }
    }
    names::<XdpMode>();
    names::<XdpAttach>();
    names::<ZeroCopy>();
    names::<SynOffloadMode>();
    names::<FullPolicy>();
    names::<View>();
    names::<ListenMode>();
    // The file and the flag get the same words from the type.
    let e = err(&lab_with("xdp", "mode = \"fast\""));
    assert!(
        e.to_string()
            .starts_with("xdp.mode: \"fast\" is not an XDP mode; use auto, native or generic"),
        "{e}"
    );
    assert_eq!(
        "sample:7".parse::<CaptureMode>(),
        Ok(CaptureMode::Sample(7))
    );
    assert_eq!(CaptureMode::Sample(7).to_string(), "sample:7");
    assert_eq!(
        KeyChoice::Fixed([0x6d; 40])
            .to_string()
            .parse::<KeyChoice>(),
        Ok(KeyChoice::Fixed([0x6d; 40]))
    );
}

#[test]
fn readme_configuration_rows_name_every_setting() {
    let readme = include_str!("../../README.md");
    for (section, _) in rules::SECTIONS {
        let label = if section.is_empty() {
            "top level".to_owned()
        } else {
            format!("`[{section}]`")
        };
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap_or_else(|| panic!("README has no configuration row for {label}"));
        for s in rules::SETTINGS.iter().filter(|s| s.section() == section) {
            assert!(
                row.contains(&format!("`{}`", s.key())),
                "README row {label} lacks `{}`",
                s.key()
            );
        }
    }
}

#[test]
fn allowed_rules_check_and_describe_the_same_bounds() {
    use rules::Allowed;
    let cases: [(Allowed, &str, &[u64], &[u64]); 4] = [
        (
            Allowed::Range(0, 600, "seconds"),
            "0..=600 seconds",
            &[0, 600],
            &[601],
        ),
        (
            Allowed::Pow2(64, 16384),
            "a power of two in 64..=16384",
            &[64, 2048],
            &[32, 100, 32768],
        ),
        (
            Allowed::OneOf(&[2048, 4096]),
            "2048 or 4096",
            &[2048, 4096],
            &[3000],
        ),
        (
            Allowed::AtLeast(1, "frame"),
            "at least 1 frame",
            &[1, u64::MAX],
            &[0],
        ),
    ];
    for (rule, text, good, bad) in cases {
        assert_eq!(rule.describe(), text);
        for &v in good {
            assert_eq!(rule.check_u64(v), Ok(()), "{text}: {v}");
        }
        for &v in bad {
            assert!(rule.check_u64(v).is_err(), "{text}: {v}");
        }
    }
    let secs = Allowed::Seconds(600);
    assert!(secs.check_f64(0.5).is_ok() && secs.check_f64(600.0).is_ok());
    assert!(secs.check_f64(0.0).is_err() && secs.check_f64(600.5).is_err());
    // The generated reference keeps its comment lines within the page.
    for line in rules::default_toml().lines().filter(|l| l.starts_with('#')) {
        assert!(line.chars().count() <= 90, "{line}");
    }
}
