//! `warden plugin add|list|inspect|remove`, and for authors `new|build|check`
//! (`add oci://…`, `update`, `push`, `sign`, `keygen`: [`super::oci`]).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{Value, json};
use warden::config::text::printable;
use warden::grant::Grant;
use warden::home::{Home, InstalledMeta, check_name};
use warden::manifest::{self, Manifest};
use warden::{Plugin, Runtime};

use super::{CliResult, Failure};

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// Install a component (a copy goes into the home); the same name again replaces it.
    Add {
        /// The component: a .wasm file (WASI 0.2), or a registry reference
        /// (oci://REGISTRY/REPO:TAG or oci://REGISTRY/REPO@sha256:DIGEST).
        #[arg(value_name = "PATH|oci://REF")]
        path: PathBuf,
        /// Name to install it under [default: the manifest's name, else the file name].
        #[arg(long)]
        name: Option<String>,
        /// The operator's grant for this plugin (TOML); without one it gets no capabilities.
        #[arg(long, value_name = "FILE")]
        grant: Option<PathBuf>,
        /// WIT source of the component, for tool descriptions when the wasm has none.
        #[arg(long, value_name = "DIR")]
        wit: Option<PathBuf>,
        /// The plugin's manifest [default: warden.toml beside the wasm, if any].
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
    },
    /// Pull a registry plugin's tag again, show what changed (digest, signer, tools,
    /// requested capabilities) and replace it when confirmed.
    Update {
        /// The plugin's name.
        name: String,
        /// Replace without asking (for scripts; without it, a terminal is asked).
        #[arg(long)]
        yes: bool,
    },
    /// Publish a component to an OCI registry (the Wasm OCI artifact layout), with its
    /// manifest and WIT docs as annotations; sign it too with --key.
    Push {
        /// The component (.wasm).
        path: PathBuf,
        /// Where: oci://REGISTRY/REPO:TAG.
        #[arg(value_name = "oci://REF")]
        reference: String,
        /// The plugin's manifest [default: warden.toml beside the wasm, if any].
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
        /// WIT source of the component, for tool descriptions when the wasm has none.
        #[arg(long, value_name = "DIR")]
        wit: Option<PathBuf>,
        /// Sign the pushed artifact with this private key (PEM).
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
    },
    /// Sign a published plugin (cosign's format, stored beside it in the registry).
    Sign {
        /// The artifact: oci://REGISTRY/REPO:TAG (signed at the digest it names now)
        /// or oci://REGISTRY/REPO@sha256:DIGEST.
        #[arg(value_name = "oci://REF")]
        reference: String,
        /// The private key (PEM: `warden plugin keygen`, or PKCS#8 / SEC1 P-256).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Make a signing key pair: OUT.key (private, mode 0600) and OUT.pub.
    Keygen {
        /// The path of the pair without extension.
        #[arg(long, value_name = "OUT", default_value = "warden-signing")]
        out: PathBuf,
    },
    /// List installed plugins.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a plugin's tools and schemas, its imports and its grant.
    Inspect {
        /// The plugin's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an installed plugin.
    Remove {
        /// The plugin's name.
        name: String,
    },
    /// Start a plugin project: WIT world, a sample tool, manifest, build command, README.
    New {
        /// The plugin's name (lowercase letters, digits and `-`), e.g. `weather`.
        name: String,
        /// The language of the project.
        #[arg(long, value_enum)]
        lang: super::template::Lang,
        /// Where to create it [default: ./NAME].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Build the plugin project in DIR with its toolchain (cargo, componentize-py, jco).
    Build {
        /// The project [default: the current directory].
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Check a component before shipping: tools and schemas, imports, what Warden cannot
    /// map, size, compile time, warnings. Installs nothing; exit 2 if it is not valid.
    Check {
        /// The component (.wasm).
        path: PathBuf,
        /// WIT source of the component, for tool descriptions when the wasm has none.
        #[arg(long, value_name = "DIR")]
        wit: Option<PathBuf>,
        /// The plugin's manifest [default: warden.toml beside the wasm, if any].
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl PluginCommand {
    /// True for the commands that open connections to a registry (they keep SIGPIPE
    /// ignored: a registry that hangs up is an error, not the end of the process).
    pub(crate) fn talks_to_a_registry(&self) -> bool {
        match self {
            Self::Add { path, .. } => path.to_str().is_some_and(warden_oci::OciRef::looks_like),
            Self::Update { .. } | Self::Push { .. } | Self::Sign { .. } => true,
            _ => false,
        }
    }
}

pub(crate) async fn run(home: &Home, cmd: PluginCommand) -> CliResult {
    match cmd {
        PluginCommand::Add {
            path,
            name,
            grant,
            wit,
            manifest,
        } => match path.to_str().filter(|p| warden_oci::OciRef::looks_like(p)) {
            Some(reference) => {
                let options = super::oci::AddOptions {
                    name,
                    grant: grant.as_deref(),
                    wit: wit.as_deref(),
                    manifest: manifest.as_deref(),
                };
                super::oci::add(home, reference, options).await
            }
            None => add(
                home,
                &path,
                name,
                grant.as_deref(),
                wit.as_deref(),
                manifest.as_deref(),
            ),
        },
        PluginCommand::Update { name, yes } => super::oci::update(home, &name, yes).await,
        PluginCommand::Push {
            path,
            reference,
            manifest,
            wit,
            key,
        } => {
            super::oci::push(
                &path,
                &reference,
                manifest.as_deref(),
                wit.as_deref(),
                key.as_deref(),
            )
            .await
        }
        PluginCommand::Sign { reference, key } => super::oci::sign(&reference, &key).await,
        PluginCommand::Keygen { out } => super::oci::keygen(&out),
        PluginCommand::List { json } => list(home, json),
        PluginCommand::Inspect { name, json } => inspect(home, &name, json),
        PluginCommand::Remove { name } => {
            let digest = home.meta(&name).map_err(Failure::usage)?.digest;
            let audit = super::audit::open_log(home)?;
            home.remove(&name).map_err(Failure::usage)?;
            super::audit::plugin_removed(&audit, &name, &digest)?;
            println!("removed {name}");
            Ok(())
        }
        PluginCommand::New { name, lang, dir } => super::template::new(&name, lang, dir),
        PluginCommand::Build { dir } => super::template::build(&dir).map(drop),
        PluginCommand::Check {
            path,
            wit,
            manifest,
            json,
        } => super::plugin_check::check(&path, wit.as_deref(), manifest.as_deref(), json),
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn default_name(path: &Path, manifest: Option<&Manifest>) -> String {
    if let Some(name) = manifest.and_then(|m| m.name.clone()) {
        return name;
    }
    path.file_stem()
        .map(|s| s.to_string_lossy().to_lowercase().replace('_', "-"))
        .unwrap_or_default()
}

/// Installs `wasm` under `name` after loading it once with the grant it will have (a
/// component that does not load is refused and the installed one, if any, stays).
/// `grant`: a new grant to set with it; `None` keeps the one already set, if any.
pub(crate) fn install(
    home: &Home,
    runtime: &Runtime,
    cache: &warden::cache::CompileCache,
    meta: InstalledMeta,
    wasm: &[u8],
    grant: Option<Grant>,
) -> CliResult<Plugin> {
    let installed = warden::home::Installed {
        grant: match &grant {
            Some(g) => Some(g.clone()),
            None => home.grant(&meta.name).map_err(Failure::usage)?,
        },
        meta,
        wasm: wasm.to_vec(),
    };
    let plugin = installed.load(runtime, Some(cache))?;
    // A grant set with the plugin accepts its tools as they are defined now.
    let grant = grant.map(|mut grant| {
        warden::pins::record(&mut grant, &plugin);
        grant
    });
    let audit = super::audit::open_log(home)?;
    let old_digest = home.meta(&installed.meta.name).ok().map(|m| m.digest);
    home.install(&installed.meta, wasm)?;
    if let Some(grant) = &grant {
        home.set_grant(&installed.meta.name, grant)?;
    }
    let meta = &installed.meta;
    super::audit::plugin_added(&audit, old_digest.as_deref(), meta, grant.as_ref())?;
    Ok(plugin)
}

fn add(
    home: &Home,
    path: &Path,
    name: Option<String>,
    grant: Option<&Path>,
    wit: Option<&Path>,
    manifest_path: Option<&Path>,
) -> CliResult {
    super::oci::refuse_unsigned_file(home, path)?;
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
    let name = name.unwrap_or_else(|| default_name(path, manifest.as_ref()));
    check_name(&name).map_err(Failure::usage)?;
    let grant = match grant {
        Some(path) => {
            let grant = Grant::read(path, &name).map_err(Failure::usage)?;
            grant.check_paths().map_err(Failure::usage)?;
            Some(grant)
        }
        None => None,
    };
    let wit_docs = match wit {
        Some(dir) => Some(
            warden::docs::PackageDocs::from_wit_dir(dir)
                .map_err(Failure::usage)?
                .raw,
        ),
        None => None,
    };
    let meta = InstalledMeta {
        name: name.clone(),
        digest: warden::plugin::digest(&wasm),
        added_at: now(),
        source: path.display().to_string(),
        manifest,
        wit_docs,
        provenance: None,
    };
    let (runtime, cache) = super::open(home)?;
    let plugin = install(home, &runtime, &cache, meta, &wasm, grant)?;
    print_added(&plugin);
    Ok(())
}

pub(crate) fn print_added(plugin: &Plugin) {
    println!("added {} ({})", plugin.name, plugin.digest);
    for tool in &plugin.tools {
        println!(
            "  {}/{}  {}",
            plugin.name,
            tool.name,
            printable(&tool.summary())
        );
    }
    for skipped in &plugin.skipped {
        println!("  (not a tool: {}: {})", skipped.name, skipped.reason);
    }
}

fn list(home: &Home, json: bool) -> CliResult {
    let mut rows = Vec::new();
    for name in home.names()? {
        let m = &home.meta(&name)?;
        rows.push(json!({
            "name": m.name,
            "digest": m.digest,
            "version": m.manifest.as_ref().and_then(|m| m.version.clone()),
            "description": m.manifest.as_ref().and_then(|m| m.description.clone()),
            "source": m.source,
            "added_at": m.added_at,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "no plugins in {} (add one with `warden plugin add PATH.wasm`)",
            home.root().display()
        );
    }
    for row in rows {
        let digest = row["digest"].as_str().unwrap_or("");
        println!(
            "{:<16} {:<10} {}  {}",
            row["name"].as_str().unwrap_or(""),
            printable(row["version"].as_str().unwrap_or("-")),
            &digest[..digest.len().min(19)],
            printable(row["description"].as_str().unwrap_or("")),
        );
    }
    Ok(())
}

/// The JSON form of a plugin, as `inspect --json` prints it.
pub(crate) fn describe(plugin: &Plugin, meta: &InstalledMeta) -> Value {
    warden::inspect::describe(plugin, meta)
}

fn inspect(home: &Home, name: &str, json: bool) -> CliResult {
    let installed = home.read(name).map_err(Failure::usage)?;
    let (runtime, cache) = super::open(home)?;
    let plugin = installed.load(&runtime, Some(&cache))?;
    let doc = describe(&plugin, &installed.meta);
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("plugin   {}", plugin.name);
    println!("digest   {}", plugin.digest);
    println!("source   {}", printable(&installed.meta.source));
    if let Some(line) = super::oci::provenance_line(&installed.meta) {
        println!("from     {}", printable(&line));
    } else {
        println!("signed   no (added from a file or an upload: no signature to verify)");
    }
    if let Some(desc) = installed
        .meta
        .manifest
        .as_ref()
        .and_then(|m| m.description.as_deref())
    {
        println!("about    {}", printable(desc));
    }
    print_capabilities(&plugin, installed.meta.manifest.as_ref());
    println!("\nimports (what the component could ask the host for)");
    for import in &plugin.imports {
        println!("  {}", printable(import));
    }
    println!("\ngrant");
    super::grant::print_summary(&plugin);
    println!("\ntools");
    for tool in &plugin.tools {
        println!("  {}/{}", plugin.name, tool.name);
        println!("    {}", tool.signature);
        println!("    {}", hints(plugin.annotations(&tool.name)));
        for line in tool.description.lines() {
            println!("    | {}", printable(line));
        }
        println!(
            "    input:  {}",
            serde_json::to_string(&tool.input_schema).unwrap_or_default()
        );
        println!(
            "    output: {}",
            serde_json::to_string(&tool.output_schema).unwrap_or_default()
        );
    }
    for skipped in &plugin.skipped {
        println!("  (not a tool: {}: {})", skipped.name, skipped.reason);
    }
    if !plugin.withheld.is_empty() {
        println!("\nwithheld (not served until an operator accepts them)");
        for w in &plugin.withheld {
            println!("  {}/{}", plugin.name, w.tool.name);
            println!("    {}", printable(&w.reason(&plugin.name)));
            println!("    {}", w.tool.signature);
            for line in w.tool.description.lines() {
                println!("    | {}", printable(line));
            }
            println!(
                "    input:  {}",
                serde_json::to_string(&w.tool.input_schema).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `read-only, idempotent, closed world` and the like, from the tool's annotations.
fn hints(a: warden::policy::ToolAnnotations) -> String {
    let effect = match (a.read_only, a.destructive) {
        (true, _) => "read-only",
        (false, true) => "destructive",
        (false, false) => "writes (not destructive)",
    };
    let idempotent = if a.idempotent {
        "idempotent"
    } else {
        "not idempotent"
    };
    let world = if a.open_world {
        "open world"
    } else {
        "closed world"
    };
    format!("[{effect}, {idempotent}, {world}]")
}

/// Side by side, per capability: what the author requests, what the component
/// imports, what the operator granted ([`warden::inspect::capabilities`]).
fn print_capabilities(plugin: &Plugin, manifest: Option<&Manifest>) {
    let requested = manifest.map(Manifest::requested).unwrap_or_default();
    println!("\ncapabilities");
    println!("  {:<8} {:<10} {:<10} granted", "", "requested", "imported");
    for row in warden::inspect::capabilities(plugin, manifest) {
        println!(
            "  {:<8} {:<10} {:<10} {}",
            row.kind,
            if row.requested.is_some() { "yes" } else { "no" },
            if row.imported { "yes" } else { "no" },
            row.granted
        );
    }
    for (cap, request) in requested {
        println!("  {cap} requested because: {}", printable(&request.reason));
    }
}
