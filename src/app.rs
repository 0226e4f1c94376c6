//! Placeholder: the real endpoint runner and lab are written on another branch.

/// Run the endpoint until SIGINT/SIGTERM.
pub fn run(cfg: crate::config::Config) -> anyhow::Result<()> {
    let _ = cfg;
    anyhow::bail!("the endpoint runner is not part of this build (placeholder app::run)")
}

/// Run the veth lab demo.
pub fn lab(opts: crate::config::LabOptions) -> anyhow::Result<()> {
    let _ = opts;
    anyhow::bail!("the lab is not part of this build (placeholder app::lab)")
}
