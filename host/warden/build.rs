//! Builds the first-party plugins (`plugins/`) for `wasm32-wasip2`, with their WIT
//! docs, and writes `OUT_DIR/bundled.rs`, which embeds them in the `warden` binary.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let plugins = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../plugins");
    let artifacts = warden_build::Build::new(&plugins).run()?;
    let mut code =
        String::from("/// The bundled plugins, by name.\npub static PLUGINS: &[Bundled] = &[\n");
    for artifact in &artifacts {
        let Some(manifest) = &artifact.manifest else {
            anyhow::bail!(
                "plugin {} has no warden.toml beside its Cargo.toml; every bundled plugin needs a manifest",
                artifact.name
            );
        };
        writeln!(
            code,
            "    Bundled {{ name: {:?}, wasm: include_bytes!({:?}), manifest: include_str!({:?}) }},",
            artifact.name, artifact.path, manifest
        )?;
    }
    code.push_str("];\n");
    std::fs::write(out.join("bundled.rs"), code)?;
    Ok(())
}
