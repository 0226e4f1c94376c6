//! Root tests of `xdp.attach`: an interface that already has an XDP program. With
//! `exclusive` (the default) `synack run` refuses to start and names the program (id,
//! name, mode) and the choices; with `replace` it detaches the program — one attached
//! through a bpf_link (our own object loaded a second time through the io::bpf API) and
//! one attached through netlink (`ip link set dev X xdpgeneric obj …`) — warns naming it,
//! and serves.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{endpoint_toml, Endpoint, Lab};
use synack::io::bpf::{Filter, XdpProgram};
use synack::io::xdp_attached::{self, AttachedMode};
use synack::io::XdpMode;

/// `synack run` with `toml` in the server namespace, expected to fail: its stderr.
fn run_expecting_failure(lab: &Lab, toml: &str) -> String {
    let dir = std::env::temp_dir().join(format!("synack-attach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join(format!("{}.toml", lab.server_if));
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
    .arg(&cfg);
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
    let err = run_expecting_failure(&lab, &endpoint_toml(&lab, "0", gen));
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
fn dummy_object(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("dummy.c");
    let obj = dir.join("dummy.o");
    std::fs::write(
        &src,
        "struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex; };\n\
         __attribute__((section(\"xdp\"), used)) int dummy_pass(struct xdp_md *ctx) \
         { return 2; /* XDP_PASS */ }\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
    .unwrap();
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

    let err = run_expecting_failure(&lab, &endpoint_toml(&lab, "0", ""));
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
