//! The nested `cargo build` of a guest workspace.

use std::env;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::TARGET;

/// One `cdylib` that cargo built.
pub(crate) struct Built {
    pub(crate) name: String,
    pub(crate) crate_dir: PathBuf,
    pub(crate) wasm: PathBuf,
}

/// Variables a build script inherits that must not reach the nested build. `CARGO_*`
/// variables are handled by [`keep_cargo_var`].
const REMOVED: &[&str] = &[
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTC_LINKER",
    "TARGET",
    "HOST",
    "OUT_DIR",
    "OPT_LEVEL",
    "PROFILE",
    "DEBUG",
    "NUM_JOBS",
];

/// `CARGO_*` variables that configure cargo itself (registry, network, home, output,
/// jobserver) and so are kept; every other `CARGO_*` variable is removed.
fn keep_cargo_var(name: &str) -> bool {
    name == "CARGO_HOME"
        || name == "CARGO_MAKEFLAGS"
        || [
            "CARGO_NET_",
            "CARGO_HTTP_",
            "CARGO_REGISTRIES_",
            "CARGO_REGISTRY_",
            "CARGO_TERM_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Runs `cargo build --release --target wasm32-wasip2` in `workspace` and returns the
/// `cdylib`s it built.
pub(crate) fn build(workspace: &Path, target_dir: &Path) -> Result<Vec<Built>> {
    check_target()?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .arg("--message-format=json-render-diagnostics")
        .arg("--target-dir")
        .arg(target_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, _) in env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let cargo_var = name.starts_with("CARGO_") && !keep_cargo_var(name);
        if cargo_var || name.starts_with("DEP_") || REMOVED.contains(&name) {
            cmd.env_remove(name);
        }
    }

    let mut child = cmd.spawn().with_context(|| {
        format!(
            "running {} (is cargo installed? see https://rustup.rs)",
            Path::new(&cargo).display()
        )
    })?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut built = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        if let Some(guest) = parse_artifact(&line) {
            built.push(guest);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!(
            "building the guests in {} failed ({status}); the errors are above. \
             Try `cd {} && cargo build --release --target {TARGET}`",
            workspace.display(),
            workspace.display()
        );
    }
    Ok(built)
}

/// A `compiler-artifact` message of a `cdylib` with a `.wasm` file.
fn parse_artifact(line: &str) -> Option<Built> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg["reason"] != "compiler-artifact" {
        return None;
    }
    let target = &msg["target"];
    let kinds = target["kind"].as_array()?;
    if !kinds.iter().any(|k| k == "cdylib") {
        return None;
    }
    let wasm = msg["filenames"]
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))?;
    let manifest = PathBuf::from(msg["manifest_path"].as_str()?);
    Some(Built {
        name: target["name"].as_str()?.to_owned(),
        crate_dir: manifest.parent()?.to_owned(),
        wasm: PathBuf::from(wasm),
    })
}

/// Fails with what to install when rustc has no `wasm32-wasip2` standard library.
fn check_target() -> Result<()> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .with_context(|| {
            format!(
                "running {} (is Rust installed? see https://rustup.rs)",
                Path::new(&rustc).display()
            )
        })?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    if !output.status.success() || !lib.is_dir() {
        bail!(
            "the {TARGET} target is not installed for the toolchain at {sysroot:?}: \
             run `rustup target add {TARGET}` (rust-toolchain.toml lists it, so a plain \
             `rustup show` in the repository installs it too)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cdylib_artifacts_only() {
        let cdylib = r#"{"reason":"compiler-artifact","manifest_path":"/w/files/Cargo.toml","target":{"name":"files","kind":["cdylib"]},"filenames":["/t/files.wasm"]}"#;
        let built = parse_artifact(cdylib).unwrap();
        assert_eq!(built.name, "files");
        assert_eq!(built.crate_dir, Path::new("/w/files"));
        assert_eq!(built.wasm, Path::new("/t/files.wasm"));
        let rlib = r#"{"reason":"compiler-artifact","manifest_path":"/w/sdk/Cargo.toml","target":{"name":"sdk","kind":["lib"]},"filenames":["/t/libsdk.rlib"]}"#;
        assert!(parse_artifact(rlib).is_none());
        assert!(parse_artifact(r#"{"reason":"build-finished","success":true}"#).is_none());
        assert!(parse_artifact("not json").is_none());
    }

    #[test]
    fn keeps_only_cargo_configuration() {
        assert!(keep_cargo_var("CARGO_HOME"));
        assert!(keep_cargo_var("CARGO_NET_OFFLINE"));
        assert!(!keep_cargo_var("CARGO_TARGET_DIR"));
        assert!(!keep_cargo_var("CARGO_BUILD_TARGET"));
        assert!(!keep_cargo_var("CARGO_ENCODED_RUSTFLAGS"));
        assert!(!keep_cargo_var("CARGO_MANIFEST_DIR"));
    }
}
