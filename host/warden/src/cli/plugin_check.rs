//! `warden plugin check PATH.wasm`: what Warden makes of a component before it ships.
//!
//! Loads the component with the same loader as `plugin add` (validation, compilation,
//! tool discovery), without a home and without capabilities, and reports its tools and
//! schemas, its imports (and which of them Warden does not provide), the exports that
//! are not tools, its size, compile time and warnings. Nothing is installed.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};
use warden::config::text::printable;
use warden::manifest::{self, Manifest};
use warden::tools::{DocSource, ExtraDocs};
use warden::{PluginSource, Runtime};

use super::{CliResult, Failure};

/// What Warden links for an import, by prefix; `None`: provided as is.
const PROVIDED: [(&str, Option<&str>); 11] = [
    ("wasi:io/", None),
    ("wasi:clocks/", None),
    ("wasi:random/", None),
    ("wasi:cli/environment", Some("only the grant's [env] vars")),
    ("wasi:cli/", None),
    (
        "wasi:filesystem/",
        Some("only the grant's [[fs]] directories"),
    ),
    (
        "wasi:sockets/",
        Some("linked, never granted: raw sockets and name lookups are denied"),
    ),
    (
        "wasi:http/outgoing-handler",
        Some("only the hosts in the grant's [net] allow"),
    ),
    ("wasi:http/types", None),
    ("warden:host/log", None),
    (
        "warden:host/memory",
        Some("only the namespaces the grant's [memory] names"),
    ),
];

/// How Warden treats `import`: `Ok(note)` when it provides it, `Err(reason)` when not.
fn classify(import: &str) -> Result<Option<&'static str>, String> {
    let versionless = import.split('@').next().unwrap_or(import);
    let version = import.split('@').nth(1).unwrap_or("");
    for (prefix, note) in PROVIDED {
        if versionless.starts_with(prefix) {
            if prefix.starts_with("wasi:") && !version.starts_with("0.2.") {
                return Err(format!(
                    "Warden provides WASI 0.2 (0.2.0 to 0.2.12), not {version}; calls to it trap"
                ));
            }
            return Ok(note);
        }
    }
    Err("not provided by Warden: the component loads, and calls to it trap".into())
}

pub(crate) fn check(
    path: &Path,
    wit: Option<&Path>,
    manifest_path: Option<&Path>,
    json: bool,
) -> CliResult {
    let wasm = std::fs::read(path)
        .with_context(|| format!("reading {}", path.display()))
        .map_err(Failure::usage)?;
    let beside = path
        .parent()
        .map(|dir| dir.join(manifest::FILE_NAME))
        .filter(|p| p.is_file());
    let manifest = match manifest_path.map(Path::to_path_buf).or(beside) {
        Some(p) => Some(Manifest::read(&p).map_err(Failure::usage)?),
        None => None,
    };
    let name = manifest
        .as_ref()
        .and_then(|m| m.name.clone())
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().to_lowercase().replace('_', "-"))
                .unwrap_or_default()
        });
    let wit_docs = match wit {
        Some(dir) => Some(warden::docs::PackageDocs::from_wit_dir(dir).map_err(Failure::usage)?),
        None => None,
    };
    let runtime = Runtime::new()?;
    let plugin = runtime.load(
        PluginSource {
            name: &name,
            wasm: &wasm,
            extra_docs: ExtraDocs {
                wit: wit_docs.as_ref(),
                manifest: manifest.as_ref(),
            },
            grant: None,
            signer: None,
        },
        None,
    )?;

    let mut warnings = Vec::new();
    let mut imports = Vec::new();
    let mut unmapped = Vec::new();
    for import in &plugin.imports {
        match classify(import) {
            Ok(note) => imports.push(json!({"name": import, "note": note})),
            Err(reason) => {
                imports.push(json!({"name": import, "note": reason}));
                unmapped.push(json!({"name": import, "kind": "import", "reason": reason}));
            }
        }
    }
    for skipped in &plugin.skipped {
        unmapped.push(json!({"name": skipped.name, "kind": "export", "reason": skipped.reason}));
    }
    if plugin.tools.is_empty() {
        warnings.push("no tools: the component exports no function Warden can serve".to_string());
    }
    for tool in &plugin.tools {
        if tool.description_source == DocSource::Signature {
            warnings.push(format!(
                "tool {} has no description (only its signature): write `///` docs on the WIT function and add with `--wit DIR`, or describe it in warden.toml [tools]",
                tool.name
            ));
        }
    }
    for name in manifest.iter().flat_map(|m| m.tools.keys()) {
        if plugin.tool(name).is_none() {
            warnings.push(format!(
                "warden.toml [tools] names {name:?}, which is not a tool of the component (its tools: {}); fix the name or drop the entry",
                plugin.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let requested = manifest
        .as_ref()
        .map(Manifest::requested)
        .unwrap_or_default();
    let imports_http = plugin
        .imports
        .iter()
        .any(|i| i.starts_with("wasi:http/outgoing-handler"));
    if imports_http && manifest.is_some() && !requested.iter().any(|(c, _)| *c == "net") {
        warnings.push(
            "imports wasi:http/outgoing-handler but warden.toml requests no `net`: if it sends requests, add `[requests] net = { reason = \"…\" }` so operators know what to grant (without a grant every request is refused)".to_string(),
        );
    }
    if manifest.is_none() {
        warnings.push(format!(
            "no manifest: put a {} beside the wasm (name, version, description, requested capabilities)",
            manifest::FILE_NAME
        ));
    }

    let tools: Vec<Value> = plugin
        .tools
        .iter()
        .map(|t| {
            json!({
                "id": format!("{}/{}", plugin.name, t.name),
                "signature": t.signature,
                "description": t.description,
                "description_source": t.description_source,
                // As declared: with no grant here, nothing narrows them.
                "annotations": t.annotations,
                "input_schema": t.input_schema,
                "output_schema": t.output_schema,
            })
        })
        .collect();
    let compile_ms = plugin.load_time.as_millis();
    let report = json!({
        "name": plugin.name.as_ref(),
        "digest": plugin.digest,
        "size_bytes": wasm.len(),
        "compile_ms": compile_ms,
        "tools": tools,
        "imports": imports,
        "unmapped": unmapped,
        "warnings": warnings,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{}: a valid component ({})", path.display(), plugin.digest);
    println!(
        "size     {:.1} MiB ({} bytes)",
        wasm.len() as f64 / (1024.0 * 1024.0),
        wasm.len()
    );
    println!("compile  {compile_ms} ms (load: compile, link, tools)");
    println!("\ntools ({})", plugin.tools.len());
    for tool in &plugin.tools {
        println!("  {}/{}  {}", plugin.name, tool.name, tool.signature);
        println!("    {}", printable(&tool.summary()));
        println!(
            "    input:  {}",
            serde_json::to_string(&tool.input_schema).unwrap_or_default()
        );
        println!(
            "    output: {}",
            serde_json::to_string(&tool.output_schema).unwrap_or_default()
        );
    }
    println!("\nimports ({})", plugin.imports.len());
    for import in &imports {
        match import["note"].as_str() {
            Some(note) => println!("  {}  ({note})", import["name"].as_str().unwrap_or("")),
            None => println!("  {}", import["name"].as_str().unwrap_or("")),
        }
    }
    println!("\ncannot map ({})", unmapped.len());
    for item in &unmapped {
        println!(
            "  {} {}: {}",
            item["kind"].as_str().unwrap_or(""),
            item["name"].as_str().unwrap_or(""),
            printable(item["reason"].as_str().unwrap_or(""))
        );
    }
    println!("\nwarnings ({})", warnings.len());
    for warning in &warnings {
        println!("  {warning}");
    }
    Ok(())
}
