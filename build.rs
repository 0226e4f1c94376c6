//! Compiles the XDP programs under `src/bpf/` with clang into `$OUT_DIR/<name>.bpf.o`:
//! `synack.bpf.c` (embedded by `io::bpf`, also built a second time as
//! `synack_fixed.bpf.o` with `-DSYNACK_FIXED_LEN`) and `flood.bpf.c` (embedded by
//! `io::flood`), each with `aya::include_bytes_aligned!`.
//!
//! It also writes `$OUT_DIR/counter_index.rs`, `io::bpf`'s `CounterIndex`, from the C
//! source's `enum counter_index`, so the two cannot drift (see [`counter_index`]).
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
    let c = std::fs::read_to_string(COUNTER_SRC)
        .unwrap_or_else(|e| fail(&format!("reading {COUNTER_SRC}: {e}")));
    let rust = counter_index(&c)
        .unwrap_or_else(|e| fail(&format!("{COUNTER_SRC}: enum counter_index: {e}")));
    std::fs::write(out_dir.join("counter_index.rs"), rust)
        .unwrap_or_else(|e| fail(&format!("writing counter_index.rs: {e}")));
}

/// The C source whose `enum counter_index` numbers the XDP program's `counters` map.
const COUNTER_SRC: &str = "src/bpf/synack.bpf.c";

/// The Rust mirror of `enum counter_index { CNT_<NAME> = <i>, /* what */ ... CNT_MAX = <n>,
/// }`: `enum CounterIndex` with a variant `<Name>` (CamelCase) of value `i`, documented by
/// the C comment, and `const CNT_MAX: u32`. The values must be 0, 1, 2, ... in order (the
/// Rust side reads every index below the count) and `CNT_MAX` last and above them; anything
/// else fails the build, so a counter added, removed, renamed or renumbered in C shows up
/// in Rust at once.
fn counter_index(c: &str) -> Result<String, String> {
    let start = c.find("enum counter_index {").ok_or("not found")?;
    let body = &c[start..];
    let body = &body[body.find('{').ok_or("no {")? + 1..body.find("};").ok_or("no };")?];
    // (name, value, comment), comments attached to the entry they follow.
    let mut entries: Vec<(String, u32, String)> = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            let end = after.find("*/").ok_or("unterminated comment")?;
            let text: Vec<&str> = after[..end]
                .lines()
                .map(|l| l.trim().trim_start_matches('*').trim())
                .collect();
            let last = entries
                .last_mut()
                .ok_or("a comment before the first entry")?;
            last.2 = text.join(" ").trim().to_string();
            rest = after[end + 2..].trim_start();
            continue;
        }
        let end = rest.find(',').ok_or("an entry without a trailing comma")?;
        let (name, value) = rest[..end]
            .split_once('=')
            .ok_or_else(|| format!("{:?} has no explicit value", &rest[..end]))?;
        let (name, value) = (name.trim(), value.trim());
        let value: u32 = value
            .parse()
            .map_err(|_| format!("{name} = {value:?} is not a number"))?;
        let name = name
            .strip_prefix("CNT_")
            .ok_or_else(|| format!("{name} does not start with CNT_"))?;
        entries.push((name.to_string(), value, String::new()));
        rest = rest[end + 1..].trim_start();
    }
    let (max_name, max, _) = entries.pop().ok_or("empty")?;
    if max_name != "MAX" {
        return Err(format!("the last entry is CNT_{max_name}, not CNT_MAX"));
    }
    let mut out = String::from(
        "/// Indices of the per-CPU `counters` map: generated by build.rs from `enum \
         counter_index`\n/// in src/bpf/synack.bpf.c (variant `SynackSent` is `CNT_SYNACK_SENT`).\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount)]\n\
         #[repr(u32)]\nenum CounterIndex {\n",
    );
    for (i, (name, value, doc)) in entries.iter().enumerate() {
        if *value as usize != i {
            return Err(format!(
                "CNT_{name} = {value}, not {i}: the values must be 0, 1, 2, ..."
            ));
        }
        if doc.is_empty() {
            return Err(format!("CNT_{name} has no comment saying what it counts"));
        }
        let camel: String = name
            .split('_')
            .map(|w| w[..1].to_string() + &w[1..].to_ascii_lowercase())
            .collect();
        out += &format!("    #[doc = {doc:?}]\n    {camel} = {value},\n");
    }
    if (max as usize) < entries.len() {
        return Err(format!(
            "CNT_MAX = {max} is below the {} counters",
            entries.len()
        ));
    }
    out += &format!(
        "}}\n\n/// `CNT_MAX`: the size of the `counters` map.\nconst CNT_MAX: u32 = {max};\n"
    );
    Ok(out)
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
