//! `[secrets]`: headers Warden adds to a guest's request for one destination, with a
//! value from Warden's own environment or a file. The value never enters the guest: it
//! is read here, when the request has already left the guest's hands.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};

use warden_config::grant::SecretGrant;
use warden_net::Destination;

/// Sets the header of every secret whose destination is `dest`; returns the header
/// names set, or why a secret could not be read.
pub(crate) fn inject(
    secrets: &BTreeMap<String, SecretGrant>,
    dest: &Destination,
    headers: &mut HeaderMap,
) -> Result<Vec<String>, String> {
    let mut injected = Vec::new();
    for (key, secret) in secrets {
        // Keys were checked when the grant was parsed.
        if Destination::parse(key).ok().as_ref() != Some(dest) {
            continue;
        }
        let value = read(secret).map_err(|why| format!("[secrets] {key:?}: {why}"))?;
        let name = HeaderName::from_bytes(secret.header.as_bytes())
            .map_err(|_| format!("[secrets] {key:?}: header {:?} is not valid", secret.header))?;
        let mut value = HeaderValue::from_str(&format!(
            "{}{value}",
            secret.prefix.as_deref().unwrap_or("")
        ))
        .map_err(|_| format!("[secrets] {key:?}: the value is not a valid header value"))?;
        value.set_sensitive(true);
        headers.insert(name, value);
        injected.push(secret.header.clone());
    }
    Ok(injected)
}

/// The secret's value, read now (so a rotated file or variable takes effect).
fn read(secret: &SecretGrant) -> Result<String, String> {
    if let Some(var) = &secret.from_env {
        return std::env::var(var).map_err(|_| {
            format!(
                "the environment variable {var} is not set for Warden; set it where Warden runs"
            )
        });
    }
    if let Some(path) = &secret.from_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_string());
    }
    Err("neither from_env nor from_file is given".into())
}
