//! Root tests of `xdp.attach`: an interface that already has an XDP program. With
//! `exclusive` (the default) `synack run` refuses to start and names the program (id,
//! name, mode) and the choices; with `replace` it detaches the program — one attached
//! through a bpf_link (our own object loaded a second time through the io::bpf API) and
//! one attached through netlink (`ip link set dev X xdpgeneric obj …`) — warns naming it,
//! and serves. With `dispatcher` it attaches through libxdp (each test mounts a bpffs of
//! its own and gives it to libxdp and xdp-loader as `LIBXDP_BPFFS`): next to a counting
//! program xdp-loader loaded, which keeps getting the frames synack passes and stays
//! after synack stops; alone, cleaning up after a SIGKILL; and refusing a program libxdp
//! did not load.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{endpoint_toml, Endpoint, Lab};
use synack::io::bpf::{Filter, XdpProgram};
use synack::io::xdp_attached::{self, AttachedMode};
use synack::io::XdpMode;

/// `synack run` with `toml` (and `env`) in the server namespace, expected to fail: its
/// stderr.
fn run_expecting_failure(lab: &Lab, toml: &str, env: &[(&str, &str)]) -> String {
    let dir = std::env::temp_dir().join(format!(
        "synack-attach-{}-{}",
        std::process::id(),
        lab.server_if
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("endpoint.toml");
    std::fs::write(&cfg, toml).unwrap();
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &lab.server_ns,
        env!("CARGO_BIN_EXE_synack"),
        "run",
    ])
    .arg("--config")
    .arg(&cfg)
    .envs(env.iter().copied());
    let out = common::run_with_timeout(&mut cmd, Duration::from_secs(20))
        .expect("synack run did not exit");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "started despite the other program: {stderr}"
    );
    stderr
}

/// A connection to the discard port completes: the server kernel has no listener there,
/// so only synack can have answered.
fn synack_answers(lab: &Lab) {
    let addr = SocketAddr::new(lab.server_v4.into(), 9);
    lab.in_ns(&lab.client_ns, || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    });
}

/// The one XDP program on the server interface, from rtnetlink.
fn attached(lab: &Lab) -> Vec<xdp_attached::AttachedProgram> {
    let ifname = lab.server_if.clone();
    lab.in_ns(&lab.server_ns, move || {
        xdp_attached::query(xdp_attached::ifindex(&ifname).expect("ifindex")).expect("query")
    })
}

#[test]
fn xdp_attach_exclusive_names_a_bpf_link_program_and_replace_detaches_it() {
    if !common::require_root("xdp_attach_exclusive_names_a_bpf_link_program_and_replace") {
        return;
    }
    let lab = Lab::new("attachlink", 1);
    let ifname = lab.server_if.clone();
    let other = lab.in_ns(&lab.server_ns, move || {
        XdpProgram::attach(&ifname, XdpMode::Generic, &Filter::default()).expect("dummy")
    });
    let before = attached(&lab);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].mode, AttachedMode::Generic);
    assert_eq!(before[0].name.as_deref(), Some("synack_xdp"));
    let id = before[0].id;

    let gen = "[xdp]\nmode = \"generic\"\n";
    let err = run_expecting_failure(&lab, &endpoint_toml(&lab, "0", gen), &[]);
    let named = format!("program id {id} name synack_xdp (xdpgeneric)");
    assert!(err.contains(&named), "{err}");
    assert!(err.contains("xdp.attach = \"replace\""), "{err}");
    assert_eq!(attached(&lab)[0].id, id, "exclusive must leave it attached");

    let replace = "[xdp]\nmode = \"generic\"\nattach = \"replace\"\n";
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", replace), &[]);
    let log = ep.stderr_text();
    assert!(
        log.contains("detaching the XDP program already there"),
        "{log}"
    );
    assert!(log.contains(&named), "{log}");
    let now = attached(&lab);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0].id, id, "the other program is still attached");
    synack_answers(&lab);
    drop(ep);
    drop(other); // its link was detached under it: dropping must not fail or panic
}

/// A minimal XDP program ("dummy_pass": XDP_PASS), compiled with clang for BPF.
fn dummy_object(dir: &Path) -> PathBuf {
    xdp_object(
        dir,
        "dummy",
        "struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex; };\n\
         __attribute__((section(\"xdp\"), used)) int dummy_pass(struct xdp_md *ctx) \
         { return 2; /* XDP_PASS */ }\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
}

/// `source` compiled with clang for BPF (with BTF, as libxdp needs) into `dir/stem.o`.
fn xdp_object(dir: &Path, stem: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{stem}.c"));
    let obj = dir.join(format!("{stem}.o"));
    std::fs::write(&src, source).unwrap();
    common::must(
        Command::new("clang")
            .args(["-O2", "-g", "-target", "bpf", "-c"])
            .arg(&src)
            .arg("-o")
            .arg(&obj),
    );
    obj
}

#[test]
fn xdp_attach_replace_detaches_a_netlink_attached_program() {
    if !common::require_root("xdp_attach_replace_detaches_a_netlink_attached_program") {
        return;
    }
    let lab = Lab::new("attachnl", 1);
    let dir = std::env::temp_dir().join(format!("synack-attachnl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let obj = dummy_object(&dir);
    let obj = obj.to_string_lossy().into_owned();
    let out = lab.ns_exec(
        &lab.server_ns,
        &[
            "ip",
            "link",
            "set",
            "dev",
            &lab.server_if,
            "xdpgeneric",
            "obj",
            &obj,
            "sec",
            "xdp",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = attached(&lab);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].name.as_deref(), Some("dummy_pass"));
    let named = format!("program id {} name dummy_pass (xdpgeneric)", before[0].id);

    let err = run_expecting_failure(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    assert!(err.contains(&named), "{err}");
    assert!(err.contains(&format!("ip link set dev {} xdpgeneric off", lab.server_if)));

    let replace = "[xdp]\nmode = \"generic\"\nattach = \"replace\"\n";
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", replace), &[]);
    assert!(ep.stderr_text().contains(&named), "{}", ep.stderr_text());
    let now = attached(&lab);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].name.as_deref(), Some("synack_xdp"));
    synack_answers(&lab);
}

/// A bpffs of one test's own (libxdp pins its dispatcher there), given to libxdp and
/// xdp-loader as `LIBXDP_BPFFS`; unmounted and removed on drop, also on failure. Create
/// it before the lab and the endpoints, so it is dropped after them.
struct BpfFs {
    dir: PathBuf,
}

impl BpfFs {
    fn new(tag: &str) -> BpfFs {
        let dir = std::env::temp_dir().join(format!("synack-bpffs-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        common::must(Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&dir));
        BpfFs { dir }
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("LIBXDP_BPFFS", self.dir.to_str().expect("utf-8 temp dir"))]
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `xdp-loader ARGS` in the server namespace with the test's bpffs: whether it succeeded,
/// and its stdout and stderr. xdp-loader takes one machine-wide lock file
/// (/run/xdp-loader.lck); while another xdp-loader holds it, retry (at most 10 s).
fn xdp_loader(lab: &Lab, fs: &BpfFs, args: &[&str]) -> (bool, String) {
    let t0 = std::time::Instant::now();
    loop {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &lab.server_ns, "xdp-loader"])
            .args(args)
            .envs(fs.env());
        let out = common::run_with_timeout(&mut cmd, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("xdp-loader {args:?} timed out"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let locked = text.contains("Unable to get program lock");
        if out.status.success() || !locked || t0.elapsed() > Duration::from_secs(10) {
            return (out.status.success(), text);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `xdp-loader status IF`: the programs on the server interface, dispatcher and chain.
fn loader_status(lab: &Lab, fs: &BpfFs) -> String {
    let (ok, text) = xdp_loader(lab, fs, &["status", &lab.server_if]);
    assert!(ok, "xdp-loader status: {text}");
    text
}

/// The program id `xdp-loader status` shows for `name` (the first number after it).
fn status_id(status: &str, name: &str) -> Option<u32> {
    status.lines().find_map(|l| {
        let mut words = l.split_whitespace().skip_while(|w| *w != name);
        words.next()?;
        words.find_map(|w| w.parse().ok())
    })
}

/// "count_pass": counts every frame it sees in its array map and passes it on.
fn counting_object(dir: &Path) -> PathBuf {
    xdp_object(
        dir,
        "count",
        "struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex; };\n\
         #define SEC(n) __attribute__((section(n), used))\n\
         struct { int (*type)[2]; int (*max_entries)[1]; unsigned int *key; \
         unsigned long long *value; } seen SEC(\".maps\");\n\
         static void *(*lookup)(void *map, const void *key) = (void *)1;\n\
         SEC(\"xdp\") int count_pass(struct xdp_md *ctx) { unsigned int k = 0; \
         unsigned long long *v = lookup(&seen, &k); if (v) __sync_fetch_and_add(v, 1); \
         return 2; /* XDP_PASS */ }\n\
         char _license[] SEC(\"license\") = \"GPL\";\n",
    )
}

/// The frames program `id` (count_pass) has counted, from its one map.
fn counted(id: u32) -> u64 {
    let info = aya::programs::loaded_programs()
        .flatten()
        .find(|p| p.id() == id)
        .unwrap_or_else(|| panic!("program id {id} is not loaded"));
    let map_id = info.map_ids().expect("map ids").expect("has maps")[0];
    let map = aya::maps::Map::Array(aya::maps::MapData::from_id(map_id).expect("map fd"));
    let array: aya::maps::Array<_, u64> = map.try_into().expect("array map");
    array.get(&0, 0).expect("read counter")
}

/// A handshake with the echo port and one echo: only synack listens on port 7.
fn echo_works(lab: &Lab, payload: &[u8]) {
    let ip = lab.server_v4.into();
    let mut s = lab
        .client_connect(ip, 7, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {ip}:7: {e}"));
    s.write_all(payload).unwrap();
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, payload);
}

/// Three pings (bounded: 3 packets, 1 s each at most) of the server's kernel from the
/// client: ICMP is not synack's, so it reaches the kernel only if passed along the chain.
fn ping_server(lab: &Lab) {
    let out = lab.ns_exec(
        &lab.client_ns,
        &[
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            &lab.server_v4.to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "ping of the server kernel failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn dispatcher_toml(lab: &Lab, mode: &str) -> String {
    endpoint_toml(
        lab,
        "0",
        &format!("[xdp]\nmode = \"{mode}\"\nattach = \"dispatcher\"\n"),
    )
}

/// Whether the kernel lets libxdp build its dispatcher (it refuses freplace programs on
/// some hardened kernels, and libxdp then loads a program alone): from what xdp-loader
/// made of `obj` on the server interface.
fn loader_chains(lab: &Lab, fs: &BpfFs) -> bool {
    loader_status(lab, fs).contains("xdp_dispatcher")
}

/// The full chain: count_pass loaded through xdp-loader first, then `synack run` with
/// `xdp.attach = "dispatcher"` joins it, in generic then native mode. Both are in the
/// chain (synack first, priority 10), a Linux client's handshake and echo work, frames
/// that are not synack's reach count_pass (its counter rises by the pings, which the
/// server's kernel answers), exclusive mode names the dispatcher choice, and after synack
/// stops count_pass is still attached and synack's program is gone. On a kernel that
/// refuses freplace programs (libxdp falls back to one program) the chain cannot exist:
/// then synack must refuse count_pass as a program not in a dispatcher, and the test says
/// the chain was not exercised (`SYNACK_REQUIRE_DISPATCHER=1` makes that a failure).
#[test]
fn xdp_attach_dispatcher_joins_a_libxdp_chain_and_leaves_the_other_program() {
    if !common::require_root("xdp_attach_dispatcher_joins_a_libxdp_chain") {
        return;
    }
    let fs = BpfFs::new("chain");
    let lab = Lab::new("dispchain", 1);
    let dir = std::env::temp_dir().join(format!("synack-dispchain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let obj = counting_object(&dir);
    let obj = obj.to_str().unwrap().to_string();
    for (loader_mode, mode) in [("skb", "generic"), ("native", "native")] {
        let (ok, text) = xdp_loader(
            &lab,
            &fs,
            &["load", "-m", loader_mode, &lab.server_if, &obj],
        );
        assert!(ok, "xdp-loader load: {text}");
        if !loader_chains(&lab, &fs) {
            let err = run_expecting_failure(&lab, &dispatcher_toml(&lab, mode), &fs.env());
            assert!(err.contains("name count_pass"), "{err}");
            assert!(err.contains("not libxdp's dispatcher"), "{err}");
            let _ = std::fs::remove_dir_all(&dir);
            let msg = "the kernel refused libxdp's freplace programs: the dispatcher chain \
                       was not exercised (only the refusal)";
            assert!(
                std::env::var("SYNACK_REQUIRE_DISPATCHER").as_deref() != Ok("1"),
                "{msg}"
            );
            eprintln!("NOTE xdp_attach_dispatcher_joins_a_libxdp_chain: {msg}");
            return;
        }
        chain_round(&lab, &fs, mode);
        let (ok, text) = xdp_loader(&lab, &fs, &["unload", &lab.server_if, "--all"]);
        assert!(ok, "xdp-loader unload: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One mode of the chain test, count_pass already in the dispatcher.
fn chain_round(lab: &Lab, fs: &BpfFs, mode: &str) {
    let status = loader_status(lab, fs);
    let count_id = status_id(&status, "count_pass").expect("count_pass id");
    let err = run_expecting_failure(lab, &endpoint_toml(lab, "0", ""), &fs.env());
    assert!(err.contains("name xdp_dispatcher"), "{err}");
    assert!(err.contains("xdp.attach = \"dispatcher\" to join"), "{err}");

    let mut ep = Endpoint::start_env(lab, &dispatcher_toml(lab, mode), &[], &fs.env());
    let status = loader_status(lab, fs);
    assert!(status.contains("synack_xdp"), "{status}");
    assert!(status.contains("count_pass"), "{status}");
    assert!(
        status.find("synack_xdp") < status.find("count_pass"),
        "synack's program must run first: {status}"
    );
    assert!(
        ep.stderr_text().contains("joined libxdp's XDP dispatcher"),
        "{}",
        ep.stderr_text()
    );
    echo_works(lab, format!("through the dispatcher, {mode}").as_bytes());
    let before = counted(count_id);
    ping_server(lab);
    let after = counted(count_id);
    assert!(
        after >= before + 3,
        "count_pass saw {before} -> {after} frames"
    );
    ep.interrupt_ok(Duration::from_secs(10));
    let status = loader_status(lab, fs);
    assert!(status.contains("count_pass"), "{status}");
    assert!(!status.contains("synack_xdp"), "{status}");
    ping_server(lab);
}

/// `xdp.attach = "dispatcher"` on an interface without XDP programs: synack attaches
/// through libxdp (into a new dispatcher, or alone where the kernel refuses freplace
/// programs), its maps are the ones libxdp's program uses (the handshake, echo and the XDP
/// counters work), and a clean stop leaves nothing attached. After a SIGKILL its program
/// stays (pinned in bpffs, or netlink-attached when alone); the next start removes it,
/// saying so, and serves.
#[test]
fn xdp_attach_dispatcher_alone_serves_and_cleans_up_after_sigkill() {
    if !common::require_root("xdp_attach_dispatcher_alone_serves_and_cleans_up_after_sigkill") {
        return;
    }
    let fs = BpfFs::new("alone");
    let lab = Lab::new("dispalone", 1);
    for mode in ["generic", "native"] {
        let mut ep = Endpoint::start_env(&lab, &dispatcher_toml(&lab, mode), &[], &fs.env());
        assert!(!attached(&lab).is_empty());
        echo_works(&lab, mode.as_bytes());
        let redirected = ep.fresh_stats()["xdp_program"]["redirected"].as_u64();
        assert!(redirected.is_some_and(|n| n > 0), "{redirected:?}");
        ep.interrupt_ok(Duration::from_secs(10));
        assert_eq!(attached(&lab), vec![], "a clean stop must detach ({mode})");
    }
    let mut ep = Endpoint::start_env(&lab, &dispatcher_toml(&lab, "generic"), &[], &fs.env());
    ep.kill();
    let left = attached(&lab);
    assert!(!left.is_empty(), "nothing left after SIGKILL?");
    let mut ep = Endpoint::start_env(&lab, &dispatcher_toml(&lab, "generic"), &[], &fs.env());
    let log = ep.stderr_text();
    assert!(log.contains("removing synack's XDP program"), "{log}");
    echo_works(&lab, b"after a SIGKILL");
    ep.interrupt_ok(Duration::from_secs(10));
    assert_eq!(attached(&lab), vec![], "the leftover must be gone too");
}

/// Dispatcher mode without a bpffs refuses to start, saying how to mount one. A program
/// named like libxdp's dispatcher (attached through netlink): exclusive mode names the
/// dispatcher choice. A plain program attached through netlink: dispatcher mode
/// refuses it, naming it and how to load it through libxdp instead, and leaves it.
#[test]
fn xdp_attach_names_the_dispatcher_choice_and_dispatcher_refuses_a_plain_program() {
    if !common::require_root("xdp_attach_names_the_dispatcher_choice") {
        return;
    }
    let fs = BpfFs::new("refuse");
    let lab = Lab::new("dispref", 1);
    let dir = std::env::temp_dir().join(format!("synack-dispref-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = xdp_object(
        &dir,
        "fake",
        "struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex; };\n\
         __attribute__((section(\"xdp\"), used)) int xdp_dispatcher(struct xdp_md *ctx) \
         { return 2; }\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    );
    let plain = dummy_object(&dir);
    let not_bpffs = [("LIBXDP_BPFFS", dir.to_str().unwrap())];
    let err = run_expecting_failure(&lab, &dispatcher_toml(&lab, "generic"), &not_bpffs);
    assert!(
        err.contains(&format!("no bpffs at {}", dir.display())),
        "{err}"
    );
    assert!(err.contains("mount -t bpf bpf"), "{err}");
    assert_eq!(
        attached(&lab),
        vec![],
        "nothing may be attached without bpffs"
    );
    let ip_link = |args: &[&str]| {
        let mut all = vec!["ip", "link", "set", "dev", &lab.server_if];
        all.extend(args);
        let out = lab.ns_exec(&lab.server_ns, &all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ip_link(&["xdpgeneric", "obj", fake.to_str().unwrap(), "sec", "xdp"]);
    let err = run_expecting_failure(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    assert!(err.contains("name xdp_dispatcher (xdpgeneric)"), "{err}");
    assert!(
        err.contains("xdp.attach = \"dispatcher\" to join its chain"),
        "{err}"
    );

    ip_link(&["xdpgeneric", "off"]);
    ip_link(&["xdpgeneric", "obj", plain.to_str().unwrap(), "sec", "xdp"]);
    let _ = std::fs::remove_dir_all(&dir);
    let before = attached(&lab);
    let err = run_expecting_failure(&lab, &dispatcher_toml(&lab, "generic"), &fs.env());
    assert!(err.contains("name dummy_pass (xdpgeneric)"), "{err}");
    assert!(err.contains("not libxdp's dispatcher"), "{err}");
    assert!(
        err.contains(&format!("xdp-loader load {}", lab.server_if)),
        "{err}"
    );
    assert_eq!(attached(&lab), before, "the other program must stay");
}
