//! Plugins from and to OCI registries: `warden plugin add oci://…`, `update`, and for
//! authors `push`, `sign` and `keygen`. Pulling, signatures and the trust policy are
//! `warden-oci`'s; this module reads the home's config, installs, prints and asks.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use warden::config::text::printable;
use warden::grant::Grant;
use warden::home::{Home, InstalledMeta, check_name};
use warden::manifest::{self, Manifest};
use warden::{Plugin, exit};
use warden_oci::{OciError, OciRef, TrustPolicy};

use super::{CliResult, Failure};

/// The exit code of a registry error: 1 when the registry could not be used (down,
/// refused the login, answered wrongly), 2 when what was asked for is wrong or refused
/// (a bad reference, no such tag, not a component, a digest mismatch, no trusted
/// signature).
fn failure(err: OciError) -> Failure {
    let code = match err {
        OciError::Unreachable { .. }
        | OciError::Registry { .. }
        | OciError::Unauthorized { .. } => exit::TOOL_FAILED,
        _ => exit::USAGE,
    };
    Failure {
        code,
        error: err.into(),
    }
}

/// The home config's trust policy, its keys read.
pub(crate) fn trust_policy(home: &Home) -> CliResult<TrustPolicy> {
    let config = super::settings::load(home)?;
    TrustPolicy::load(&config.trust, &super::settings::dir(home)).map_err(Failure::usage)
}

/// Refuses a plugin from a file when the trust policy requires signatures.
pub(crate) fn refuse_unsigned_file(home: &Home, path: &Path) -> CliResult {
    if super::settings::load(home)?.trust.require_signatures {
        return Err(Failure::usage(anyhow::anyhow!(
            "{} is refused: a plugin from a file has no signature, and [trust] require_signatures = true; publish it and sign it (`warden plugin push`, `warden plugin sign`), then `warden plugin add oci://…`",
            path.display()
        )));
    }
    Ok(())
}

fn parse_ref(text: &str) -> CliResult<OciRef> {
    text.parse().map_err(failure)
}

/// What `add` takes besides the reference.
pub(crate) struct AddOptions<'a> {
    pub(crate) name: Option<String>,
    pub(crate) grant: Option<&'a Path>,
    pub(crate) wit: Option<&'a Path>,
    pub(crate) manifest: Option<&'a Path>,
}

/// `warden plugin add oci://…`: pull, check the digests, judge the signatures, install.
pub(crate) async fn add(home: &Home, reference: &str, options: AddOptions<'_>) -> CliResult {
    let reference = parse_ref(reference)?;
    let policy = trust_policy(home)?;
    let fetched = warden_oci::fetch(&reference, &policy)
        .await
        .map_err(failure)?;
    let manifest = match options.manifest {
        Some(path) => Some(Manifest::read(path).map_err(Failure::usage)?),
        None => published_manifest(&fetched.pulled)?,
    };
    let name = match options
        .name
        .or_else(|| manifest.as_ref().and_then(|m| m.name.clone()))
    {
        Some(name) => name,
        None => default_name(&reference),
    };
    check_name(&name).map_err(Failure::usage)?;
    let provenance = match fetched.provenance(&policy) {
        Ok(provenance) => provenance,
        Err(err) => {
            refused(home, &name, &fetched.pulled.digest, &err)?;
            return Err(failure(err));
        }
    };
    let grant = read_grant(options.grant, &name)?;
    let wit_docs = match options.wit {
        Some(dir) => Some(
            warden::docs::PackageDocs::from_wit_dir(dir)
                .map_err(Failure::usage)?
                .raw,
        ),
        None => fetched.pulled.wit_docs().map(str::to_string),
    };
    let wasm = fetched.pulled.wasm;
    let meta = InstalledMeta {
        name,
        digest: warden::plugin::digest(&wasm),
        added_at: super::plugin::now(),
        source: reference.to_string(),
        manifest,
        wit_docs,
        provenance: Some(provenance),
    };
    let (runtime, cache) = super::open(home)?;
    let plugin = super::plugin::install(home, &runtime, &cache, meta.clone(), &wasm, grant)?;
    super::plugin::print_added(&plugin);
    print_provenance(&meta);
    if let Some(notice) = &plugin.notice {
        eprintln!("warning: {notice}");
    }
    Ok(())
}

fn read_grant(path: Option<&Path>, name: &str) -> CliResult<Option<Grant>> {
    match path {
        Some(path) => {
            let grant = Grant::read(path, name).map_err(Failure::usage)?;
            grant.check_paths().map_err(Failure::usage)?;
            Ok(Some(grant))
        }
        None => Ok(None),
    }
}

/// The last part of the repository, as a plugin name.
fn default_name(reference: &OciRef) -> String {
    reference
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .replace(['_', '.'], "-")
}

fn published_manifest(pulled: &warden_oci::Pulled) -> CliResult<Option<Manifest>> {
    match pulled.manifest() {
        Some(text) => Manifest::parse(text).map(Some).map_err(|err| {
            Failure::usage(anyhow::Error::new(err).context(format!(
                "{}: the plugin manifest published with it",
                pulled.reference
            )))
        }),
        None => Ok(None),
    }
}

/// A refused add on the record (`plugin.add`, outcome `error`).
fn refused(home: &Home, name: &str, digest: &str, err: &OciError) -> CliResult {
    let audit = super::audit::open_log(home)?;
    let old = home.meta(name).ok().map(|m| m.digest);
    super::audit::plugin_refused(&audit, name, old.as_deref(), digest, &format!("{err:#}"))?;
    Ok(())
}

/// `from oci://… (manifest sha256:…), signed by "acme" (key sha256:…)`, or for a
/// Sigstore bundle `signed by "acme-ci" (keyless: identity …, issuer …, …)`.
pub(crate) fn provenance_line(meta: &InstalledMeta) -> Option<String> {
    let p = meta.provenance.as_ref()?;
    let signed = match p.signature.as_ref().filter(|s| s.digest == meta.digest) {
        Some(s) => match (&s.identity, &s.issuer) {
            (Some(identity), Some(issuer)) => format!(
                "signed by \"{}\" (keyless: identity {identity}, issuer {issuer}, certificate key {})",
                s.signer, s.key
            ),
            _ => format!("signed by \"{}\" (key {})", s.signer, s.key),
        },
        None => "not signed by a trusted key".to_string(),
    };
    Some(format!(
        "{} (manifest {}), {signed}",
        p.reference, p.manifest_digest
    ))
}

fn print_provenance(meta: &InstalledMeta) {
    if let Some(line) = provenance_line(meta) {
        println!("  from {}", printable(&line));
    }
}

/// `warden plugin update NAME`: pull its tag again, show what changed, replace when
/// confirmed (`--yes`, or a `y` at a terminal).
pub(crate) async fn update(home: &Home, name: &str, yes: bool) -> CliResult {
    let installed = home.read(name).map_err(Failure::usage)?;
    let Some(provenance) = installed.meta.provenance.clone() else {
        return Err(Failure::usage(anyhow::anyhow!(
            "plugin \"{name}\" was added from {}, not from a registry; add the new version with `warden plugin add`",
            installed.meta.source
        )));
    };
    let reference = parse_ref(&provenance.reference)?;
    if reference.tag().is_none() {
        println!(
            "{name} is pinned to {reference}: a digest names one version, so there is nothing to update; add another reference with `warden plugin add oci://… --name {name}`"
        );
        return Ok(());
    }
    let policy = trust_policy(home)?;
    let fetched = warden_oci::fetch(&reference, &policy)
        .await
        .map_err(failure)?;
    if fetched.pulled.manifest_digest == provenance.manifest_digest
        && fetched.pulled.digest == installed.meta.digest
    {
        println!(
            "{name} is up to date ({reference} is {})",
            provenance.manifest_digest
        );
        return Ok(());
    }
    let new_provenance = match fetched.provenance(&policy) {
        Ok(p) => p,
        Err(err) => {
            refused(home, name, &fetched.pulled.digest, &err)?;
            return Err(failure(err));
        }
    };
    let manifest = published_manifest(&fetched.pulled)?.or(installed.meta.manifest.clone());
    let wasm = fetched.pulled.wasm.clone();
    let meta = InstalledMeta {
        name: name.to_string(),
        digest: warden::plugin::digest(&wasm),
        added_at: super::plugin::now(),
        source: reference.to_string(),
        manifest,
        wit_docs: fetched
            .pulled
            .wit_docs()
            .map(str::to_string)
            .or(installed.meta.wit_docs.clone()),
        provenance: Some(new_provenance),
    };
    let (runtime, cache) = super::open(home)?;
    let old = installed.load(&runtime, Some(&cache))?;
    let candidate = warden::home::Installed {
        meta: meta.clone(),
        wasm: wasm.clone(),
        grant: installed.grant.clone(),
    };
    let new = candidate.load(&runtime, Some(&cache))?;
    print_change(&installed.meta, &old, &meta, &new);
    if !confirmed(name, yes)? {
        return Ok(());
    }
    let plugin = super::plugin::install(home, &runtime, &cache, meta, &wasm, None)?;
    println!("updated {} ({})", plugin.name, plugin.digest);
    if let Some(notice) = &plugin.notice {
        eprintln!("warning: {notice}");
    }
    Ok(())
}

/// True when the operator agreed to replace: `--yes`, or `y` at a terminal. Without
/// either (a script), nothing is replaced and the error says how to.
fn confirmed(name: &str, yes: bool) -> CliResult<bool> {
    if yes {
        return Ok(true);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::usage(anyhow::anyhow!(
            "not replaced: no terminal to confirm on; run `warden plugin update {name} --yes` to replace"
        )));
    }
    eprint!("replace {name} with this version? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(true)
    } else {
        println!("not replaced");
        Ok(false)
    }
}

fn signer_of(meta: &InstalledMeta) -> String {
    match meta
        .provenance
        .as_ref()
        .and_then(|p| p.signer_of(&meta.digest))
    {
        Some(signer) => format!("signed by \"{signer}\""),
        None => "unsigned".to_string(),
    }
}

/// What an update changes: digests, signer, tools, requested capabilities, and what the
/// grant will give.
fn print_change(old_meta: &InstalledMeta, old: &Plugin, new_meta: &InstalledMeta, new: &Plugin) {
    let old_manifest = old_meta
        .provenance
        .as_ref()
        .map_or("-", |p| p.manifest_digest.as_str());
    let new_manifest = new_meta
        .provenance
        .as_ref()
        .map_or("-", |p| p.manifest_digest.as_str());
    println!("update {}: {}", new_meta.name, new_meta.source);
    println!("  manifest  {old_manifest} -> {new_manifest}");
    println!("  digest    {} -> {}", old.digest, new.digest);
    println!(
        "  signature {} -> {}",
        signer_of(old_meta),
        signer_of(new_meta)
    );
    let names = |p: &Plugin| -> Vec<String> { p.tools.iter().map(|t| t.name.clone()).collect() };
    let (old_tools, new_tools) = (names(old), names(new));
    for tool in new_tools.iter().filter(|t| !old_tools.contains(t)) {
        println!("  tool      + {}/{tool}", new.name);
    }
    for tool in old_tools.iter().filter(|t| !new_tools.contains(t)) {
        println!("  tool      - {}/{tool}", new.name);
    }
    for tool in new.tools.iter() {
        if let Some(before) = old.tool(&tool.name)
            && before.signature != tool.signature
        {
            println!(
                "  tool      ~ {}/{}: {} -> {}",
                new.name, tool.name, before.signature, tool.signature
            );
        }
    }
    let requests = |m: &InstalledMeta| -> Vec<(String, String)> {
        m.manifest
            .as_ref()
            .map(|m| {
                m.requested()
                    .into_iter()
                    .map(|(cap, r)| (cap.to_string(), r.reason.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old_req, new_req) = (requests(old_meta), requests(new_meta));
    for (cap, reason) in &new_req {
        if !old_req.iter().any(|(c, _)| c == cap) {
            println!("  requests  + {cap} ({})", printable(reason));
        }
    }
    for (cap, _) in &old_req {
        if !new_req.iter().any(|(c, _)| c == cap) {
            println!("  requests  - {cap}");
        }
    }
    if old_tools == new_tools && old_req == new_req {
        println!("  tools and requested capabilities: unchanged");
    }
    match &new.notice {
        Some(notice) => println!("  grant     {notice}"),
        None if new.grant.is_some() => println!("  grant     kept: the new version runs with it"),
        None => println!("  grant     none: the new version gets no capabilities"),
    }
}

/// `warden plugin push PATH.wasm oci://…`: check the component, publish it with its
/// manifest and WIT docs as annotations, and sign it with `--key`.
pub(crate) async fn push(
    path: &Path,
    reference: &str,
    manifest_path: Option<&Path>,
    wit: Option<&Path>,
    key: Option<&Path>,
) -> CliResult {
    let reference = parse_ref(reference)?;
    let wasm = std::fs::read(path).map_err(|e| {
        Failure::usage(anyhow::Error::new(e).context(format!("reading {}", path.display())))
    })?;
    warden::plugin::validate(&path.display().to_string(), &wasm).map_err(Failure::usage)?;
    let beside = path
        .parent()
        .map(|dir| dir.join(manifest::FILE_NAME))
        .filter(|p| p.is_file());
    let manifest_text = match manifest_path.map(Path::to_path_buf).or(beside) {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| {
                Failure::usage(anyhow::Error::new(e).context(format!("reading {}", p.display())))
            })?;
            Manifest::parse(&text).map_err(|e| {
                Failure::usage(anyhow::Error::new(e).context(p.display().to_string()))
            })?;
            Some(text)
        }
        None => None,
    };
    let manifest = manifest_text
        .as_deref()
        .map(Manifest::parse)
        .transpose()
        .ok()
        .flatten();
    let wit_docs = match wit {
        Some(dir) => Some(
            warden::docs::PackageDocs::from_wit_dir(dir)
                .map_err(Failure::usage)?
                .raw,
        ),
        None => None,
    };
    let key = key
        .map(warden_oci::cosign::PrivateKey::read)
        .transpose()
        .map_err(failure)?;
    let artifact = warden_oci::artifact::Artifact {
        wasm: wasm.clone(),
        title: manifest.as_ref().and_then(|m| m.name.clone()),
        version: manifest.as_ref().and_then(|m| m.version.clone()),
        description: manifest.as_ref().and_then(|m| m.description.clone()),
        manifest: manifest_text,
        wit_docs,
        created: None,
    };
    let digest = warden_oci::push(&reference, &artifact)
        .await
        .map_err(failure)?;
    println!("pushed {reference}");
    println!("  component {}", warden::plugin::digest(&wasm));
    println!("  manifest  {digest}");
    println!("  pinned    {}", reference.at_digest(&digest));
    if let Some(key) = key {
        let pinned = reference.at_digest(&digest);
        warden_oci::sign(&pinned, &key).await.map_err(failure)?;
        println!("  signed    with key {}", key.public().fingerprint());
    }
    Ok(())
}

/// `warden plugin sign oci://… --key KEY`: sign the artifact the reference names now.
pub(crate) async fn sign(reference: &str, key: &Path) -> CliResult {
    let reference = parse_ref(reference)?;
    let key = warden_oci::cosign::PrivateKey::read(key).map_err(failure)?;
    let digest = warden_oci::sign(&reference, &key).await.map_err(failure)?;
    println!(
        "signed {} with key {}",
        reference.at_digest(&digest),
        key.public().fingerprint()
    );
    Ok(())
}

/// `warden plugin keygen`: a new signing key pair, `PREFIX.key` (private, mode 0600)
/// and `PREFIX.pub`.
pub(crate) fn keygen(prefix: &Path) -> CliResult {
    let private = PathBuf::from(format!("{}.key", prefix.display()));
    let public = PathBuf::from(format!("{}.pub", prefix.display()));
    for path in [&private, &public] {
        if path.exists() {
            return Err(Failure::usage(anyhow::anyhow!(
                "{} exists; choose another --out, or move it away first",
                path.display()
            )));
        }
    }
    let key = warden_oci::cosign::PrivateKey::generate().map_err(failure)?;
    let pem = key.to_pem().map_err(failure)?;
    write_private(&private, pem.as_bytes())?;
    std::fs::write(&public, key.public().to_pem()).map_err(|e| {
        Failure::usage(anyhow::Error::new(e).context(format!("writing {}", public.display())))
    })?;
    println!("private key {} (keep it secret)", private.display());
    println!(
        "public key  {} (give it to operators: [trust.keys.NAME] public_key)",
        public.display()
    );
    println!("fingerprint {}", key.public().fingerprint());
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> CliResult {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            Failure::usage(anyhow::Error::new(e).context(format!("writing {}", path.display())))
        })?;
    file.write_all(bytes)?;
    Ok(())
}
