//! Warden's WIT packages, embedded in the binary: the source of `warden wit export`,
//! of the `wit/` that `warden plugin new` vendors into a project, and of the packages
//! that WIT given with `warden plugin add --wit` may depend on.
//!
//! The repository's `wit/` holds `warden:plugin` (`world.wit`), `warden:host` and the
//! WASI 0.2 packages that Warden provides (`deps/`, vendored from wasmtime's own WIT so
//! that guests import exactly the versions the host links). Exported, every package is a
//! directory of its own (`warden-plugin-0.1.0/`, `warden-host-0.1.0/`,
//! `wasi-http-0.2.12/`, …): the layout of a project's `wit/deps/`, which wit-bindgen,
//! componentize-py and jco all read.

use std::path::Path;

use crate::error::WitError;

/// One embedded package: its directory name when exported, and its files.
pub struct Package {
    /// Directory name, `<namespace>-<name>-<version>`.
    pub dir: &'static str,
    /// File name and contents of each of its `.wit` files.
    pub files: &'static [(&'static str, &'static str)],
}

macro_rules! wit {
    ($path:literal) => {
        include_str!(concat!("../../../wit/", $path))
    };
}

/// Every package of the repository's `wit/`, dependencies before their dependents.
pub const PACKAGES: &[Package] = &[
    Package {
        dir: "wasi-io-0.2.12",
        files: &[("io.wit", wit!("deps/wasi-io-0.2.12/io.wit"))],
    },
    Package {
        dir: "wasi-clocks-0.2.12",
        files: &[("clocks.wit", wit!("deps/wasi-clocks-0.2.12/clocks.wit"))],
    },
    Package {
        dir: "wasi-random-0.2.12",
        files: &[("random.wit", wit!("deps/wasi-random-0.2.12/random.wit"))],
    },
    Package {
        dir: "wasi-filesystem-0.2.12",
        files: &[(
            "filesystem.wit",
            wit!("deps/wasi-filesystem-0.2.12/filesystem.wit"),
        )],
    },
    Package {
        dir: "wasi-sockets-0.2.12",
        files: &[("sockets.wit", wit!("deps/wasi-sockets-0.2.12/sockets.wit"))],
    },
    Package {
        dir: "wasi-cli-0.2.12",
        files: &[("cli.wit", wit!("deps/wasi-cli-0.2.12/cli.wit"))],
    },
    Package {
        dir: "wasi-http-0.2.12",
        files: &[("http.wit", wit!("deps/wasi-http-0.2.12/http.wit"))],
    },
    Package {
        dir: "warden-host-0.1.0",
        files: &[
            ("log.wit", wit!("deps/warden-host-0.1.0/log.wit")),
            ("memory.wit", wit!("deps/warden-host-0.1.0/memory.wit")),
            ("models.wit", wit!("deps/warden-host-0.1.0/models.wit")),
        ],
    },
    Package {
        dir: "warden-plugin-0.1.0",
        files: &[
            ("world.wit", wit!("world.wit")),
            ("agent.wit", wit!("agent.wit")),
        ],
    },
];

/// Where each exported package came from in the repository's `wit/` (for the test
/// that keeps [`PACKAGES`] complete).
pub fn source_path(package: &Package, file: &str) -> String {
    match package.dir {
        "warden-plugin-0.1.0" => file.to_string(),
        dir => format!("deps/{dir}/{file}"),
    }
}

/// Writes every package into `dir`, one directory each; returns the directory names.
/// Files already there are overwritten, others are left alone.
pub fn export(dir: &Path) -> Result<Vec<&'static str>, WitError> {
    let mut written = Vec::new();
    for package in PACKAGES {
        let target = dir.join(package.dir);
        if let Err(source) = std::fs::create_dir_all(&target) {
            return Err(WitError::CreateDir {
                path: target,
                source,
            });
        }
        for (name, text) in package.files {
            let path = target.join(name);
            if let Err(source) = std::fs::write(&path, text) {
                return Err(WitError::Write { path, source });
            }
        }
        written.push(package.dir);
    }
    Ok(written)
}

/// Adds every embedded package to `resolve`, so that WIT read after it may import
/// Warden's and WASI's interfaces.
pub fn push_all(resolve: &mut wit_parser::Resolve) -> Result<(), WitError> {
    for package in PACKAGES {
        let mut sources = wit_parser::SourceMap::default();
        for (name, text) in package.files {
            sources.push(Path::new(&format!("{}/{name}", package.dir)), *text);
        }
        let group = sources.parse().map_err(|(_, err)| WitError::Parse {
            package: package.dir,
            // The message alone, as wit-parser words it.
            source: err.to_string().into(),
        })?;
        resolve.push_group(group).map_err(|err| WitError::Resolve {
            package: package.dir,
            source: err.into(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to `wit/` must be added to [`PACKAGES`] too.
    #[test]
    fn every_file_of_wit_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "wit") {
                    let rel = path.strip_prefix(&root).unwrap();
                    on_disk.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let mut embedded: Vec<String> = PACKAGES
            .iter()
            .flat_map(|p| p.files.iter().map(move |(f, _)| source_path(p, f)))
            .collect();
        on_disk.sort();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "add the new file to warden::wit::PACKAGES"
        );
    }

    #[test]
    fn the_embedded_packages_resolve() {
        let mut resolve = wit_parser::Resolve::default();
        push_all(&mut resolve).unwrap();
        assert!(
            resolve
                .packages
                .iter()
                .any(|(_, p)| p.name.to_string() == "warden:plugin@0.1.0")
        );
    }
}
