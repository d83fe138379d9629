//! Audit records of changes to what a home holds and what a server serves: plugins
//! added, replaced and removed, grants set, and plugins (re)loaded or refused by a
//! running server. The CLI, the HTTP API and the server's registry all write their
//! changes through these functions, so one kind of change has one shape of record.
//!
//! Kinds:
//! - `plugin.add`, `plugin.replace` (with `old_digest`), `plugin.remove`: the home's
//!   installed plugins changed (an add from a registry with its `reference`,
//!   `manifest_digest`, `signer`, `signing_key`, and for a keyless signature
//!   `signer_identity` and `signer_issuer`) (outcome `error` with an `error` field when a change
//!   was refused);
//! - `grant.set`: the old and new grant as TOML, with their SHA-256;
//! - `plugin.load`, `plugin.unload`: what a server serves changed (a new version is
//!   served, or a plugin is no longer served); `plugin.load` with outcome `error` is a
//!   version refused while the old one keeps serving.

use warden_audit::{self, Audit, Event, Outcome, Record};
use warden_config::grant::Grant;

use crate::error::RecordError;
use crate::home::InstalledMeta;

/// Appends `event` and waits until it is on disk; the error says the change was made
/// but not recorded.
pub async fn write(audit: &Audit, event: Event) -> Result<Record, RecordError> {
    let kind = event.kind.clone();
    audit
        .append(event)
        .await
        .map_err(|err| RecordError::Change {
            kind,
            source: err.into(),
        })
}

/// [`write`] for code that is not async.
pub fn write_blocking(audit: &Audit, event: Event) -> Result<Record, RecordError> {
    let kind = event.kind.clone();
    audit
        .append_blocking(event)
        .map_err(|err| RecordError::Change {
            kind,
            source: err.into(),
        })
}

fn with_grant(event: Event, grant: Option<&Grant>) -> Event {
    match grant {
        Some(grant) => {
            let text = grant.to_toml();
            event
                .field("grant_sha256", warden_audit::digest(text.as_bytes()))
                .field("grant", text)
        }
        None => event,
    }
}

/// `plugin.add` (or `plugin.replace`, with the old digest) of an installed plugin, with
/// where it came from: the source, and for a registry artifact the reference, the
/// manifest digest and the verified signer and key (`signer: null` when unsigned).
pub fn plugin_added(
    principal: &str,
    old_digest: Option<&str>,
    meta: &InstalledMeta,
    grant: Option<&Grant>,
) -> Event {
    let kind = if old_digest.is_some() {
        "plugin.replace"
    } else {
        "plugin.add"
    };
    let mut event = Event::new(kind, principal)
        .plugin(&meta.name)
        .outcome(Outcome::Ok)
        .field("digest", meta.digest.as_str())
        .field("source", meta.source.as_str());
    if let Some(old) = old_digest {
        event = event.field("old_digest", old);
    }
    if let Some(provenance) = &meta.provenance {
        let signature = provenance
            .signature
            .as_ref()
            .filter(|s| s.digest == meta.digest);
        event = event
            .field("reference", provenance.reference.as_str())
            .field("manifest_digest", provenance.manifest_digest.as_str())
            .field("signer", signature.map(|s| s.signer.as_str()))
            .field("signing_key", signature.map(|s| s.key.as_str()))
            .field(
                "signer_identity",
                signature.and_then(|s| s.identity.as_deref()),
            )
            .field("signer_issuer", signature.and_then(|s| s.issuer.as_deref()));
    }
    with_grant(event, grant)
}

/// A refused `plugin.add` / `plugin.replace`: the component (or its grant) did not load,
/// and the installed version, if any, stays.
pub fn plugin_refused(
    principal: &str,
    name: &str,
    old_digest: Option<&str>,
    digest: &str,
    error: &str,
) -> Event {
    let kind = if old_digest.is_some() {
        "plugin.replace"
    } else {
        "plugin.add"
    };
    let mut event = Event::new(kind, principal)
        .plugin(name)
        .outcome(Outcome::Error)
        .field("digest", digest)
        .field("error", error);
    if let Some(old) = old_digest {
        event = event.field("old_digest", old);
    }
    event
}

/// `plugin.remove` with the removed component's digest.
pub fn plugin_removed(principal: &str, name: &str, digest: &str) -> Event {
    Event::new("plugin.remove", principal)
        .plugin(name)
        .outcome(Outcome::Ok)
        .field("digest", digest)
}

/// `grant.set` with the old grant (none: `null`) and the new one, as TOML, with their
/// SHA-256.
pub fn grant_set(principal: &str, name: &str, old: Option<String>, new: &Grant) -> Event {
    let new = new.to_toml();
    let old_digest = old.as_deref().map(|t| warden_audit::digest(t.as_bytes()));
    Event::new("grant.set", principal)
        .plugin(name)
        .outcome(Outcome::Ok)
        .field("old", old)
        .field("old_sha256", old_digest)
        .field("new_sha256", warden_audit::digest(new.as_bytes()))
        .field("new", new)
}

/// `plugin.load`: a server now serves this version of the plugin (with its grant's
/// SHA-256); `old_digest` is the version it replaced, if any.
pub fn plugin_loaded(
    principal: &str,
    name: &str,
    old_digest: Option<&str>,
    digest: &str,
    grant: Option<&Grant>,
    trigger: &str,
) -> Event {
    let mut event = Event::new("plugin.load", principal)
        .plugin(name)
        .outcome(Outcome::Ok)
        .field("digest", digest)
        .field("trigger", trigger);
    if let Some(old) = old_digest {
        event = event.field("old_digest", old);
    }
    if let Some(grant) = grant {
        event = event.field(
            "grant_sha256",
            warden_audit::digest(grant.to_toml().as_bytes()),
        );
    }
    event
}

/// A refused `plugin.load`: the new version did not load; `serving` is the digest of
/// the version that keeps serving, if any.
pub fn load_refused(
    principal: &str,
    name: &str,
    serving: Option<&str>,
    error: &str,
    trigger: &str,
) -> Event {
    Event::new("plugin.load", principal)
        .plugin(name)
        .outcome(Outcome::Error)
        .field("serving", serving)
        .field("error", error)
        .field("trigger", trigger)
}

/// `plugin.unload`: a server no longer serves the plugin.
pub fn plugin_unloaded(principal: &str, name: &str, digest: &str, trigger: &str) -> Event {
    Event::new("plugin.unload", principal)
        .plugin(name)
        .outcome(Outcome::Ok)
        .field("digest", digest)
        .field("trigger", trigger)
}
