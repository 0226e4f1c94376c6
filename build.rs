//! Compiles the XDP programs under `src/bpf/` with clang into `$OUT_DIR/<name>.bpf.o`:
//! `synack.bpf.c` (embedded by `io::bpf`, also built a second time as
//! `synack_fixed.bpf.o` with `-DSYNACK_FIXED_LEN`) and `flood.bpf.c` (embedded by
//! `io::flood`), each with `aya::include_bytes_aligned!`.
//!
//! Needs `clang` and the libbpf headers (`bpf/bpf_helpers.h`); the multiarch include dir
//! (`/usr/include/<triple>`) provides `asm/types.h`. Set `CLANG` to use another clang.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const SRCS: &[&str] = &["src/bpf/synack.bpf.c", "src/bpf/flood.bpf.c"];

/// Second builds of a source with a define: (source, output stem, define).
/// `synack_fixed.bpf.o` never resizes frames (for libxdp dispatcher slots that must not
/// change packet data; `io::bpf` falls back to it when the kernel refuses the first).
const VARIANTS: &[(&str, &str, &str)] = &[(
    "src/bpf/synack.bpf.c",
    "synack_fixed.bpf",
    "-DSYNACK_FIXED_LEN",
)];

fn main() {
    for src in SRCS {
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CLANG");

    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    match Command::new(&clang).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => fail(&format!(
            "`{clang}` was not found or does not run. The XDP program needs clang with the BPF \
             target: install the Debian/Ubuntu packages `clang` and `libbpf-dev` \
             (apt-get install clang libbpf-dev), or set CLANG=/path/to/clang."
        )),
    }

    let multiarch = multiarch_include();
    let helpers_found = ["/usr/include", "/usr/local/include"]
        .iter()
        .any(|d| Path::new(d).join("bpf/bpf_helpers.h").exists());
    if !helpers_found {
        fail(
            "bpf/bpf_helpers.h not found in /usr/include or /usr/local/include: install the \
             Debian/Ubuntu package `libbpf-dev` (apt-get install libbpf-dev); clang is also \
             needed (package `clang`).",
        );
    }

    for src in SRCS {
        let stem = Path::new(src)
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("source names are ASCII");
        compile(
            &clang,
            multiarch.as_deref(),
            src,
            &out_dir.join(format!("{stem}.o")),
            None,
        );
    }
    for (src, stem, define) in VARIANTS {
        let out = out_dir.join(format!("{stem}.o"));
        compile(&clang, multiarch.as_deref(), src, &out, Some(define));
    }
}

/// Compile one BPF C source into `out`, with `define` (`-DNAME`) if given.
fn compile(clang: &str, multiarch: Option<&str>, src: &str, out: &Path, define: Option<&str>) {
    let mut cmd = Command::new(clang);
    cmd.args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"]);
    cmd.args(define);
    if let Some(dir) = multiarch {
        cmd.arg(format!("-I{dir}"));
    }
    cmd.args(["-c", src, "-o"]).arg(out);
    let output = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("could not run {clang}: {e}")));
    if !output.status.success() {
        fail(&format!(
            "clang failed to compile {src} (command: {cmd:?}):\n{}\nIf the error is a missing \
             header, install the packages `clang` and `libbpf-dev` (and `linux-libc-dev` for \
             asm/types.h).",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
}

/// `/usr/include/<triple>` of the build host, where Debian keeps `asm/types.h`.
fn multiarch_include() -> Option<String> {
    let triple = match env::consts::ARCH {
        "x86_64" => "x86_64-linux-gnu".to_string(),
        "aarch64" => "aarch64-linux-gnu".to_string(),
        _ => {
            let o = Command::new("gcc").arg("-print-multiarch").output().ok()?;
            String::from_utf8(o.stdout).ok()?.trim().to_string()
        }
    };
    let dir = format!("/usr/include/{triple}");
    Path::new(&dir).is_dir().then_some(dir)
}

fn fail(msg: &str) -> ! {
    eprintln!("error: building the XDP program: {msg}");
    panic!("building the XDP program: {msg}");
}
