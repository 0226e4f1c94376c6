//! `synack lab`: the self-contained veth demo (being written).

use crate::config::LabOptions;

/// Run the lab.
pub fn run(opts: LabOptions) -> anyhow::Result<()> {
    let _ = opts;
    anyhow::bail!("synack lab is not implemented yet")
}
