//! The nested `cargo build` of a guest workspace.

use std::env;
use std::ffi::OsStr;
use std::fs;
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
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    ensure_target(Path::new(&rustc))?;
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

/// Makes sure rustc has the `wasm32-wasip2` standard library. When it is missing and
/// rustup manages the toolchain, installs it with `rustup target add` (rustup does not
/// always do so by itself, e.g. with `RUSTUP_AUTO_INSTALL=0`) and says so in a cargo
/// warning; otherwise fails with what to install.
fn ensure_target(rustc: &Path) -> Result<()> {
    let sysroot = sysroot(rustc)?;
    if has_target(&sysroot) {
        return Ok(());
    }
    let Some(rustup) = find_rustup() else {
        bail!(
            "the {TARGET} target is not installed for the toolchain at {}, and rustup, \
             which would install it, was not found: install the {TARGET} standard library \
             for this toolchain, or install rustup (https://rustup.rs) and run \
             `rustup target add {TARGET}` in the repository",
            sysroot.display()
        );
    };
    let Some(toolchain) = rustup_toolchain(&sysroot, env::var_os("RUSTUP_TOOLCHAIN").as_deref())
    else {
        bail!(
            "the {TARGET} target is not installed for the toolchain at {}, which rustup \
             does not manage: install the {TARGET} standard library for this toolchain, \
             or build with a rustup toolchain (https://rustup.rs)",
            sysroot.display()
        );
    };
    let args = ["target", "add", TARGET, "--toolchain", &toolchain];
    let command = format!("rustup {}", args.join(" "));

    // The build scripts of several crates may get here at once: one installs, the
    // others find the target installed once they hold the lock.
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(env::temp_dir().join("warden-build-rustup-target.lock"));
    let _lock = lock.ok().filter(|file| file.lock().is_ok());
    if has_target(&sysroot) {
        return Ok(());
    }
    let output = Command::new(&rustup)
        .args(args)
        // A failure's message, not rustup's own stack trace.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{command}`"))?;
    if !output.status.success() {
        bail!(
            "the {TARGET} target is not installed for the toolchain at {}, and `{command}` \
             failed ({}):\n{}\nRun it yourself (it needs the network once), then build again",
            sysroot.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if !has_target(&sysroot) {
        bail!(
            "`{command}` succeeded, but the toolchain at {} still has no {TARGET} \
             standard library: install the target for that toolchain",
            sysroot.display()
        );
    }
    println!(
        "cargo:warning=the {TARGET} target was not installed for the toolchain at {}: \
         installed it with `{command}`",
        sysroot.display()
    );
    Ok(())
}

/// The sysroot of `rustc` (`rustc --print sysroot`).
fn sysroot(rustc: &Path) -> Result<PathBuf> {
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .with_context(|| {
            format!(
                "running {} (is Rust installed? see https://rustup.rs)",
                rustc.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "`{} --print sysroot` failed ({}): {}",
            rustc.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// True when the toolchain at `sysroot` has the target's standard library.
fn has_target(sysroot: &Path) -> bool {
    sysroot
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib")
        .is_dir()
}

/// The rustup executable: on `PATH`, else in `$CARGO_HOME/bin` or `~/.cargo/bin`.
fn find_rustup() -> Option<PathBuf> {
    let home_bins = [
        env::var_os("CARGO_HOME").map(PathBuf::from),
        env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")),
    ];
    std::iter::once(PathBuf::from("rustup"))
        .chain(
            home_bins
                .into_iter()
                .flatten()
                .map(|dir| dir.join("bin").join("rustup")),
        )
        .find(|rustup| {
            Command::new(rustup)
                .arg("--version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
}

/// The rustup toolchain to add the target to: the one whose rustc builds the guests,
/// named by its sysroot (`<rustup home>/toolchains/<name>`); else `RUSTUP_TOOLCHAIN`,
/// which rustup sets for the cargo it runs and so for its build scripts (it would
/// override any `--toolchain`-less rustup command run from here anyway).
fn rustup_toolchain(sysroot: &Path, rustup_toolchain: Option<&OsStr>) -> Option<String> {
    let under_rustup = sysroot
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|dir| dir == "toolchains");
    let from_sysroot = sysroot
        .file_name()
        .filter(|_| under_rustup)
        .and_then(OsStr::to_str);
    from_sysroot
        .or_else(|| rustup_toolchain.and_then(OsStr::to_str))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
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

    #[test]
    fn adds_the_target_to_the_toolchain_that_builds() {
        let rustup = Path::new("/home/me/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu");
        // The sysroot names the toolchain, whatever RUSTUP_TOOLCHAIN says.
        assert_eq!(
            rustup_toolchain(rustup, None).as_deref(),
            Some("1.95.0-x86_64-unknown-linux-gnu")
        );
        assert_eq!(
            rustup_toolchain(rustup, Some(OsStr::new("stable"))).as_deref(),
            Some("1.95.0-x86_64-unknown-linux-gnu")
        );
        // A sysroot elsewhere: RUSTUP_TOOLCHAIN when rustup set it, else none.
        let other = Path::new("/usr/lib/rust");
        assert_eq!(
            rustup_toolchain(other, Some(OsStr::new("nightly"))).as_deref(),
            Some("nightly")
        );
        assert_eq!(rustup_toolchain(other, Some(OsStr::new(""))), None);
        assert_eq!(rustup_toolchain(other, None), None);
    }

    #[test]
    fn finds_the_target_in_the_sysroot() {
        let dir = env::temp_dir().join(format!("warden-build-sysroot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert!(!has_target(&dir));
        fs::create_dir_all(dir.join("lib/rustlib").join(TARGET).join("lib")).unwrap();
        assert!(has_target(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }
}
