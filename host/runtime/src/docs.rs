//! Tool descriptions from WIT doc comments.
//!
//! The docs come from the first of: the component's `package-docs` custom section (the
//! format wit-parser's `PackageMetadata` writes: a version byte, then JSON), WIT source
//! given when the plugin is added (reduced to the same JSON), the plugin's manifest,
//! or a generated one-line signature.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::DocsError;

/// Name of the custom section that carries a package's WIT docs.
pub const SECTION: &str = "package-docs";

/// Doc comments of one WIT package, as far as tools need them.
#[derive(Clone, Debug, Default)]
pub struct PackageDocs {
    /// The JSON this was read from (version byte stripped), kept to store with the plugin.
    pub raw: String,
    world_funcs: BTreeMap<String, String>,
    interfaces: BTreeMap<String, InterfaceDocs>,
}

#[derive(Clone, Debug, Default)]
struct InterfaceDocs {
    docs: Option<String>,
    funcs: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawPackage {
    #[serde(default)]
    worlds: BTreeMap<String, RawWorld>,
    #[serde(default)]
    interfaces: BTreeMap<String, RawInterface>,
}

#[derive(Deserialize)]
struct RawWorld {
    #[serde(default)]
    funcs: BTreeMap<String, RawFunc>,
    #[serde(default)]
    func_exports: BTreeMap<String, RawFunc>,
    #[serde(default)]
    interfaces: BTreeMap<String, RawInterface>,
    #[serde(default)]
    interface_exports: BTreeMap<String, RawInterface>,
}

#[derive(Deserialize)]
struct RawInterface {
    #[serde(default)]
    docs: Option<String>,
    #[serde(default)]
    funcs: BTreeMap<String, RawFunc>,
}

/// v0 wrote a function's docs as a plain string, v1 as an object.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawFunc {
    Docs(Option<String>),
    Object {
        #[serde(default)]
        docs: Option<String>,
    },
}

impl RawFunc {
    fn docs(self) -> Option<String> {
        match self {
            RawFunc::Docs(docs) | RawFunc::Object { docs } => docs,
        }
    }
}

fn interface_docs(raw: RawInterface) -> InterfaceDocs {
    InterfaceDocs {
        docs: raw.docs,
        funcs: raw
            .funcs
            .into_iter()
            .filter_map(|(name, f)| Some((name, f.docs()?)))
            .collect(),
    }
}

impl PackageDocs {
    /// Parses the JSON of a `package-docs` section (without the version byte).
    pub fn from_json(json: &str) -> Result<Self, DocsError> {
        let raw: RawPackage = serde_json::from_str(json).map_err(DocsError::Json)?;
        let mut docs = PackageDocs {
            raw: json.to_string(),
            ..Default::default()
        };
        for (name, iface) in raw.interfaces {
            docs.interfaces.insert(name, interface_docs(iface));
        }
        for world in raw.worlds.into_values() {
            for (name, f) in world.funcs.into_iter().chain(world.func_exports) {
                if let Some(text) = f.docs() {
                    docs.world_funcs.insert(name, text);
                }
            }
            for (name, iface) in world.interfaces.into_iter().chain(world.interface_exports) {
                docs.interfaces
                    .entry(name)
                    .or_insert_with(|| interface_docs(iface));
            }
        }
        Ok(docs)
    }

    /// Parses the payload of a `package-docs` custom section.
    pub fn from_section(payload: &[u8]) -> Result<Self, DocsError> {
        match payload.first() {
            Some(0 | 1) => {}
            Some(v) => return Err(DocsError::Version(*v)),
            None => return Err(DocsError::Empty),
        }
        let json = std::str::from_utf8(&payload[1..]).map_err(DocsError::Utf8)?;
        Self::from_json(json)
    }

    /// The top-level `package-docs` section of a component, if it has one.
    pub fn from_component(wasm: &[u8]) -> Option<Result<Self, DocsError>> {
        let mut depth = 0usize;
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            match payload {
                Ok(wasmparser::Payload::Version { .. }) => depth += 1,
                Ok(wasmparser::Payload::End(_)) => depth = depth.saturating_sub(1),
                Ok(wasmparser::Payload::CustomSection(reader))
                    if depth == 1 && reader.name() == SECTION =>
                {
                    return Some(Self::from_section(reader.data()));
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// The docs of the main package of the WIT source in `dir` (a directory with
    /// `*.wit` files and optionally `deps/`). Warden's own packages (`warden:plugin`,
    /// `warden:host`) are known, so a world that includes them needs no vendored copy.
    pub fn from_wit_dir(dir: &Path) -> Result<Self, DocsError> {
        let mut resolve = wit_parser::Resolve::default();
        let pkg = match resolve.push_dir(dir) {
            Ok((pkg, _)) => pkg,
            Err(_) => {
                // Resolve it against Warden's and WASI's packages, which it may import.
                resolve = wit_parser::Resolve::default();
                crate::wit::push_all(&mut resolve)?;
                resolve
                    .push_dir(dir)
                    .map_err(|err| DocsError::Read {
                        path: dir.to_path_buf(),
                        source: err.into(),
                    })?
                    .0
            }
        };
        let meta = wit_parser::PackageMetadata::extract(&resolve, pkg);
        let payload = meta.encode().map_err(|err| DocsError::Encode(err.into()))?;
        Self::from_section(&payload)
    }

    /// Docs of a function: at world level (`interface` is `None`) or inside the exported
    /// interface with this short name.
    pub fn function(&self, interface: Option<&str>, func: &str) -> Option<&str> {
        match interface {
            None => self.world_funcs.get(func).map(String::as_str),
            Some(iface) => self
                .interfaces
                .get(iface)?
                .funcs
                .get(func)
                .map(String::as_str),
        }
    }

    /// Docs of an exported interface.
    pub fn interface(&self, interface: &str) -> Option<&str> {
        self.interfaces.get(interface)?.docs.as_deref()
    }
}
