//! Builds a cargo workspace of WebAssembly guests from a build script.
//!
//! Used by `tests/build.rs` (test guests and first-party plugins, handed to the tests
//! as path constants) and by the `warden` crate's build script (the bundled plugins).
//! It does what wasmtime's `crates/test-programs/artifacts/build.rs` does:
//!
//! 1. runs `cargo build --release --target wasm32-wasip2` in the guest workspace, with
//!    the variables that the outer cargo gives a build script removed (they would leak
//!    into the nested build: `RUSTFLAGS`, `RUSTC_WORKSPACE_WRAPPER` set by clippy,
//!    `CARGO_TARGET_DIR`, ...), into a target directory of its own under the outer one;
//! 2. parses each guest's WIT (the shared root `wit/` first, then the crate's `wit/`)
//!    and appends a `package-docs` custom section to the component, so that the
//!    component carries its doc comments (the tool descriptions);
//! 3. writes the result to `OUT_DIR/<name>.wasm` and prints `cargo:rerun-if-changed`
//!    for the sources, the WIT and the SDK: only paths that exist, since cargo reruns a
//!    build script on every build while a path it names is missing (for one that may
//!    appear later, a crate's `wit/` or `warden.toml`, the directory that would hold it).
//!
//! When rustc has no `wasm32-wasip2` standard library and rustup manages the toolchain,
//! the target is installed with `rustup target add` (and a `cargo:warning` says so).
//!
//! ```no_run
//! // build.rs
//! let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
//! let artifacts = warden_build::Build::new("../plugins").run().unwrap();
//! warden_build::write_constants(&artifacts, &out.join("plugins.rs")).unwrap();
//! ```

mod cargo;
mod docs;

use std::collections::BTreeSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use docs::{inject_package_docs, package_docs};

/// The target every guest is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// One built guest component, with its `package-docs` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The crate's library name, e.g. `files`.
    pub name: String,
    /// Absolute path of the component in `OUT_DIR`.
    pub path: PathBuf,
    /// The crate's `warden.toml` manifest (beside its `Cargo.toml`), when it has one.
    pub manifest: Option<PathBuf>,
}

impl Artifact {
    /// The name as a Rust constant: `log-flood` → `LOG_FLOOD`.
    pub fn const_name(&self) -> String {
        self.name.to_ascii_uppercase().replace('-', "_")
    }
}

/// How to build one guest workspace. Defaults suit a build script; see [`Build::new`].
#[derive(Debug, Clone)]
pub struct Build {
    workspace: PathBuf,
    target_dir: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    shared_wit: Option<PathBuf>,
}

impl Build {
    /// A build of the cargo workspace in `workspace` (relative paths are taken from the
    /// calling crate's `CARGO_MANIFEST_DIR`).
    ///
    /// Defaults: target directory [`default_target_dir`] (`<outer target>/wasm-guests`,
    /// shared by all guest workspaces), output directory `$OUT_DIR`, shared WIT the
    /// nearest `wit/` directory above the workspace (the repository's root `wit/`).
    pub fn new(workspace: impl Into<PathBuf>) -> Self {
        Self {
            workspace: workspace.into(),
            target_dir: None,
            out_dir: None,
            shared_wit: None,
        }
    }

    /// Builds into `dir` instead of the default target directory.
    pub fn target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target_dir = Some(dir.into());
        self
    }

    /// Writes the components with docs into `dir` instead of `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Parses `dir` before each crate's own `wit/` (the packages it includes).
    pub fn shared_wit(mut self, dir: impl Into<PathBuf>) -> Self {
        self.shared_wit = Some(dir.into());
        self
    }

    /// Builds every `cdylib` of the workspace, injects its docs and returns the
    /// components, sorted by name.
    pub fn run(&self) -> Result<Vec<Artifact>> {
        let workspace = absolute(&self.workspace)?;
        let target_dir = match &self.target_dir {
            Some(dir) => absolute(dir)?,
            None => default_target_dir()?,
        };
        let out_dir = match &self.out_dir {
            Some(dir) => absolute(dir)?,
            None => PathBuf::from(env::var_os("OUT_DIR").context(
                "OUT_DIR is not set: call this from a build script or set Build::out_dir",
            )?),
        };
        let shared_wit = match &self.shared_wit {
            Some(dir) => Some(absolute(dir)?),
            None => find_shared_wit(&workspace),
        };

        let mut inputs = vec![workspace.join("Cargo.toml"), workspace.join("Cargo.lock")];
        if let Some(wit) = &shared_wit {
            inputs.push(wit.clone());
            // The SDK beside the shared WIT is a path dependency of the guests.
            let sdk = wit.with_file_name("sdk");
            if sdk.is_dir() {
                inputs.push(sdk.join("Cargo.toml"));
                inputs.push(sdk.join("src"));
            }
        }

        let built = cargo::build(&workspace, &target_dir)?;
        fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
        let mut artifacts = Vec::new();
        for guest in built {
            let crate_wit = guest.crate_dir.join("wit");
            let manifest = guest.crate_dir.join("warden.toml");
            inputs.extend([
                guest.crate_dir.join("Cargo.toml"),
                guest.crate_dir.join("src"),
                crate_wit.clone(),
                manifest.clone(),
            ]);

            let wasm = fs::read(&guest.wasm)
                .with_context(|| format!("reading {}", guest.wasm.display()))?;
            // A guest built on the SDK's worlds alone (no `wit/` of its own) has no
            // package of its own to document.
            let wasm = if crate_wit.is_dir() {
                let docs = package_docs(shared_wit.as_deref(), &crate_wit).with_context(|| {
                    format!("guest {}: reading the docs of its WIT", guest.name)
                })?;
                inject_package_docs(&wasm, &docs)
                    .with_context(|| format!("guest {}: injecting package-docs", guest.name))?
            } else {
                wasm
            };
            let path = out_dir.join(format!("{}.wasm", guest.name));
            fs::write(&path, wasm).with_context(|| format!("writing {}", path.display()))?;
            artifacts.push(Artifact {
                name: guest.name,
                path,
                manifest: manifest.is_file().then_some(manifest),
            });
        }
        for path in rerun_paths(inputs) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        artifacts.sort_by(|a, b| a.name.cmp(&b.name));
        if artifacts.is_empty() {
            bail!(
                "{}: the workspace has no `cdylib` crate to build",
                workspace.display()
            );
        }
        Ok(artifacts)
    }
}

/// Builds the guest workspace `dir` into `target_dir`, with the other defaults of
/// [`Build::new`].
pub fn build_workspace(dir: &Path, target_dir: &Path) -> Result<Vec<Artifact>> {
    Build::new(dir).target_dir(target_dir).run()
}

/// `<outer target dir>/wasm-guests`, found from `$OUT_DIR`
/// (`<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`).
pub fn default_target_dir() -> Result<PathBuf> {
    let out = PathBuf::from(
        env::var_os("OUT_DIR").context("OUT_DIR is not set: call this from a build script")?,
    );
    let build = out
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .with_context(|| format!("OUT_DIR {} is not under a `build` directory", out.display()))?;
    let profile = build.parent().context("OUT_DIR has no profile directory")?;
    let target = profile
        .parent()
        .context("OUT_DIR has no target directory")?;
    Ok(target.join("wasm-guests"))
}

/// Writes a Rust file with one `pub const NAME: &str = "/abs/path/name.wasm";` per
/// artifact, and `pub const ALL: &[(&str, &str)]` with (name, path) of each.
pub fn write_constants(artifacts: &[Artifact], path: &Path) -> Result<()> {
    let mut src =
        String::from("// Generated by warden-build: the guest components built for this crate.\n");
    for artifact in artifacts {
        let path = artifact
            .path
            .to_str()
            .with_context(|| format!("{}: the path is not UTF-8", artifact.path.display()))?;
        writeln!(
            src,
            "/// The `{}` component (with its `package-docs`).\npub const {}: &str = {path:?};",
            artifact.name,
            artifact.const_name()
        )?;
    }
    src.push_str(
        "/// Every component above, as (name, path).\npub const ALL: &[(&str, &str)] = &[\n",
    );
    for artifact in artifacts {
        writeln!(src, "    ({:?}, {}),", artifact.name, artifact.const_name())?;
    }
    src.push_str("];\n");
    fs::write(path, src).with_context(|| format!("writing {}", path.display()))
}

/// The paths to name in `cargo:rerun-if-changed` for `inputs`, each once: see
/// [`watched_path`].
fn rerun_paths(inputs: impl IntoIterator<Item = PathBuf>) -> BTreeSet<PathBuf> {
    inputs
        .into_iter()
        .filter_map(|path| watched_path(&path))
        .collect()
}

/// What to watch for `path`: the path itself when it exists; else its parent directory,
/// whose modification time changes when `path` appears; else nothing. Cargo reruns a
/// build script on every build while a path it names does not exist, so a missing path
/// is never named.
fn watched_path(path: &Path) -> Option<PathBuf> {
    if path.exists() {
        return Some(path.to_owned());
    }
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty() && parent.is_dir())
        .map(Path::to_path_buf)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    let path = if path.is_relative() {
        match env::var_os("CARGO_MANIFEST_DIR") {
            Some(dir) => PathBuf::from(dir).join(path),
            None => env::current_dir()?.join(path),
        }
    } else {
        path.to_owned()
    };
    path.canonicalize()
        .with_context(|| format!("{}: no such directory", path.display()))
}

/// The nearest `wit/` directory strictly above `workspace`.
fn find_shared_wit(workspace: &Path) -> Option<PathBuf> {
    workspace
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("wit"))
        .find(|wit| wit.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty directory under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = env::temp_dir().join(format!("warden-build-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn watches_what_exists_else_the_directory_it_would_appear_in() {
        let dir = scratch("watch");
        let guest = dir.join("guest");
        fs::create_dir_all(guest.join("src")).unwrap();
        fs::write(guest.join("Cargo.toml"), "").unwrap();

        // Paths that exist are watched as they are, file or directory.
        assert_eq!(
            watched_path(&guest.join("Cargo.toml")),
            Some(guest.join("Cargo.toml"))
        );
        assert_eq!(watched_path(&guest.join("src")), Some(guest.join("src")));
        // A missing `wit/` or `warden.toml`: the crate directory, where it would appear.
        assert_eq!(watched_path(&guest.join("wit")), Some(guest.clone()));
        assert_eq!(
            watched_path(&guest.join("warden.toml")),
            Some(guest.clone())
        );
        // Nothing when the parent is missing too (or is not a directory).
        assert_eq!(watched_path(&dir.join("gone/wit")), None);
        assert_eq!(watched_path(&guest.join("Cargo.toml/wit")), None);
        assert_eq!(watched_path(Path::new("missing-relative-path")), None);

        // Every path in the set exists, each is named once.
        let paths = rerun_paths([
            guest.join("Cargo.toml"),
            guest.join("src"),
            guest.join("wit"),
            guest.join("warden.toml"),
            dir.join("gone/wit"),
        ]);
        assert_eq!(
            paths.into_iter().collect::<Vec<_>>(),
            [guest.clone(), guest.join("Cargo.toml"), guest.join("src")]
        );
        assert!(rerun_paths([dir.join("gone/wit")]).is_empty());

        // Once the directory appears, it is watched itself.
        fs::create_dir(guest.join("wit")).unwrap();
        assert_eq!(watched_path(&guest.join("wit")), Some(guest.join("wit")));
        fs::remove_dir_all(&dir).unwrap();
    }
}
