//! Write the seed corpus `synack::testkit::seeds::seeds()` into
//! `fuzz/seeds/<target>/<name>`: `cargo run --example write_seeds` from `fuzz/`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, name, bytes) in synack::testkit::seeds::seeds() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(&name), &bytes)?;
        println!("{target}/{name}: {bytes} bytes", bytes = bytes.len());
    }
    Ok(())
}
