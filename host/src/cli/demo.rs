//! `warden demo`: install the bundled plugins and show them at work.

use serde_json::json;
use warden::home::{Home, InstalledMeta};

use super::CliResult;

pub(crate) async fn run(home: &Home) -> CliResult {
    let (runtime, cache) = super::open(home)?;
    println!("Warden home: {}\n", home.root().display());
    let mut plugins = Vec::new();
    for bundled in warden::bundled::PLUGINS {
        let manifest = warden::manifest::Manifest::parse(bundled.manifest)?;
        let meta = InstalledMeta {
            name: bundled.name.to_string(),
            digest: warden::plugin::digest(bundled.wasm),
            added_at: 0,
            source: "bundled".into(),
            manifest: Some(manifest),
            wit_docs: None,
        };
        let plugin = super::plugin::install(home, &runtime, &cache, meta, bundled.wasm)?;
        super::plugin::print_added(&plugin);
        plugins.push(plugin);
    }
    let examples = [
        ("text", "word-count", json!({"text": "Warden runs every tool in its own sandbox.\nNothing is ambient."})),
    ];
    for (plugin_name, tool, args) in examples {
        let Some(plugin) = plugins.iter().find(|p| &*p.name == plugin_name) else {
            continue;
        };
        println!("\n$ warden call {plugin_name}/{tool} --input '{args}'");
        match runtime.call(plugin, tool, &args).await {
            Ok(value) => println!("{}", serde_json::to_string_pretty(&value)?),
            Err(err) => println!("error (exit {}): {err}", err.exit_code()),
        }
    }
    Ok(())
}
