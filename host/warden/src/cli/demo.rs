//! `warden demo`: install the bundled plugins into the home and show them at work,
//! including what a sandbox without a grant is refused.

use serde_json::{Value, json};
use warden::home::{Home, InstalledMeta};

use super::CliResult;

fn examples() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "text",
            "word-count",
            json!({"text": "Warden runs every tool in its own sandbox.\nNothing is ambient."}),
        ),
        (
            "text",
            "diff",
            json!({"old": "red\ngreen\nblue", "new": "red\nyellow\nblue", "context": 0}),
        ),
        (
            "text",
            "extract",
            json!({"text": "Mail ops@example.com about https://example.com/status, 3 retries.", "kinds": ["urls", "emails", "numbers"]}),
        ),
        (
            "text",
            "transform.case-convert",
            json!({"text": "tool call audit log", "style": "pascal"}),
        ),
        (
            "text",
            "json-query",
            json!({"document": r#"{"plugins": [{"name": "text"}, {"name": "files"}]}"#, "path": "plugins[1].name"}),
        ),
        (
            "text",
            "json-query",
            json!({"document": r#"{"plugins": []}"#, "path": "tools"}),
        ),
        ("files", "list", json!({"path": "/"})),
        ("fetch", "get", json!({"url": "https://example.com/"})),
    ]
}

pub(crate) async fn run(home: &Home) -> CliResult {
    let (runtime, cache) = super::open(home)?;
    println!("Warden home: {}\n", home.root().display());
    let mut plugins = Vec::new();
    for bundled in warden::bundled::PLUGINS {
        let manifest = warden::manifest::Manifest::parse(bundled.manifest)?;
        let meta = InstalledMeta {
            name: bundled.name.to_string(),
            digest: warden::plugin::digest(bundled.wasm),
            added_at: super::plugin::now(),
            source: "bundled".into(),
            manifest: Some(manifest),
            wit_docs: None,
            provenance: None,
        };
        let plugin = super::plugin::install(home, &runtime, &cache, meta, bundled.wasm, None)?;
        super::plugin::print_added(&plugin);
        plugins.push(plugin);
    }
    println!("\nA plugin without a grant gets no files, no network, no environment.");
    for (plugin_name, tool, args) in examples() {
        let Some(plugin) = plugins.iter().find(|p| &*p.name == plugin_name) else {
            continue;
        };
        println!("\n$ warden call {plugin_name}/{tool} --input '{args}'");
        match runtime.call(plugin, tool, &args).await {
            Ok(value) => println!("{}", serde_json::to_string_pretty(&value)?),
            Err(err) => println!("error: {err}\n(exit code {})", warden::exit::code(&err)),
        }
    }
    granted_files(home, &runtime, &cache).await?;
    println!(
        "\nThe plugins stay installed in {}: try `warden plugin inspect text`, or\n`warden call text/detect --input '{{\"text\": \"42\"}}'`.",
        home.root().display()
    );
    Ok(())
}

/// Grants `files` one read-only directory inside the home and shows it at work.
async fn granted_files(
    home: &Home,
    runtime: &warden::Runtime,
    cache: &warden::cache::CompileCache,
) -> CliResult {
    let dir = std::fs::canonicalize(home.root())?.join("demo-files");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("hello.txt"),
        "This file is in the one directory the demo granted to the files plugin.\n",
    )?;
    // Pinned to the component it was written for, as every grant Warden writes.
    let grant = warden::grant::Grant {
        digest: Some(home.meta("files")?.digest),
        fs: vec![warden::grant::FsGrant {
            host: dir.clone(),
            guest: "/demo".into(),
            access: warden::grant::Access::Read,
        }],
        ..Default::default()
    };
    home.set_grant("files", &grant)?;
    let plugin = home.read("files")?.load(runtime, Some(cache))?;
    println!(
        "\nNow the demo grants files read access to {} (seen as /demo):\n$ warden grant show files\n{}",
        dir.display(),
        grant.to_toml().trim_end()
    );
    for (tool, args) in [
        ("read", json!({"path": "/demo/hello.txt"})),
        (
            "write",
            json!({"path": "/demo/hello.txt", "content": "changed", "mode": "overwrite"}),
        ),
    ] {
        println!("\n$ warden call files/{tool} --input '{args}'");
        match runtime.call(&plugin, tool, &args).await {
            Ok(value) => println!("{}", serde_json::to_string_pretty(&value)?),
            Err(err) => println!("error: {err}\n(exit code {})", warden::exit::code(&err)),
        }
    }
    Ok(())
}
