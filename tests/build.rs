//! Builds the test guests (`tests/guests/`) and the first-party plugins (`plugins/`)
//! for `wasm32-wasip2`, with their WIT docs injected, and writes
//! `OUT_DIR/guests.rs`: one path constant per component (`TYPES`, `FILES`, ...).

use std::collections::BTreeSet;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut artifacts = warden_build::Build::new("guests").run()?;
    artifacts.extend(warden_build::Build::new("../plugins").run()?);

    let mut names = BTreeSet::new();
    for artifact in &artifacts {
        anyhow::ensure!(
            names.insert(artifact.const_name()),
            "two guests are named {:?}: rename one crate in tests/guests or plugins",
            artifact.name
        );
    }
    warden_build::write_constants(&artifacts, &out.join("guests.rs"))
}
