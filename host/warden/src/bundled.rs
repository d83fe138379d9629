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

#[cfg(test)]
mod tests {
    #[test]
    fn every_bundled_plugin_describes_each_of_its_tools_and_no_other() {
        let runtime = warden_runtime::Runtime::new().unwrap();
        for bundled in super::PLUGINS {
            let name = bundled.name;
            let manifest = warden_config::manifest::Manifest::parse(bundled.manifest)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            let source = warden_runtime::PluginSource {
                name,
                wasm: bundled.wasm,
                extra_docs: warden_runtime::tools::ExtraDocs {
                    wit: None,
                    manifest: Some(&manifest),
                },
                grant: None,
                signer: None,
            };
            let plugin = runtime.load(source, None).unwrap();
            let tools: Vec<&str> = plugin.tools.iter().map(|t| t.name.as_str()).collect();
            let described: Vec<&str> = manifest.tools.keys().map(String::as_str).collect();
            let mut sorted = tools.clone();
            sorted.sort_unstable();
            assert_eq!(described, sorted, "{name}: [tools] of warden.toml");
            for tool in &plugin.tools {
                assert_eq!(
                    tool.annotations,
                    manifest.annotations(&tool.name),
                    "{name}/{}",
                    tool.name
                );
            }
        }
    }
}
