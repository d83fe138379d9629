//! The first-party plugins built into the `warden` binary (`plugins/` in the
//! repository), with their WIT docs in their `package-docs` sections.

/// One bundled plugin.
#[derive(Clone, Copy, Debug)]
pub struct Bundled {
    /// Its name.
    pub name: &'static str,
    /// The component.
    pub wasm: &'static [u8],
    /// Its manifest (`warden.toml`).
    pub manifest: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The bundled plugin with this name.
pub fn get(name: &str) -> Option<&'static Bundled> {
    PLUGINS.iter().find(|p| p.name == name)
}
