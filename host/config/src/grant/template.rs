//! The grant `warden grant init` writes for a person to review, from what a plugin's
//! manifest requests.

use super::{Grant, NetGrant};
use crate::text::printable;

/// A grant for a person to review, written from what the manifest requests: every
/// capability commented out, the digest pinned, the limits at their defaults. It parses
/// as a grant as it is (and grants nothing but the pin and the limits).
pub fn template(name: &str, digest: &str, manifest: Option<&crate::manifest::Manifest>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Grant for plugin \"{name}\", written from its manifest's requests."
    );
    let _ = writeln!(
        out,
        "# A grant is the operator's decision, not the author's: review every line."
    );
    let _ = writeln!(
        out,
        "# Nothing below is granted until you uncomment it, then run:"
    );
    let _ = writeln!(out, "#   warden grant set {name} THIS_FILE\n");
    let _ = writeln!(out, "plugin = {name:?}");
    let _ = writeln!(
        out,
        "# The pin: a changed component gets no capabilities until this is updated."
    );
    let _ = writeln!(out, "digest = {digest:?}\n");
    let requests = manifest.map(|m| m.requested()).unwrap_or_default();
    if requests.is_empty() {
        let _ = writeln!(out, "# The manifest requests no capabilities.\n");
    }
    for (capability, request) in requests {
        // The author's words, on comment lines: a line break or an escape sequence in
        // them must not end the comment (and write a grant line) or hide one.
        let _ = writeln!(
            out,
            "# {capability} requested: {}",
            printable(&request.reason)
        );
        if !request.targets.is_empty() {
            let targets = request.targets.join(", ");
            let _ = writeln!(out, "#   targets: {}", printable(&targets));
        }
        match capability {
            "fs" => {
                let _ = writeln!(out, "# [[fs]]");
                let _ = writeln!(out, "# host = \"/absolute/path/on/this/machine\"");
                let _ = writeln!(out, "# guest = \"/data\"");
                let _ = writeln!(out, "# access = \"read\"            # read | read-write");
            }
            "net" => {
                let entries: Vec<String> = request
                    .targets
                    .iter()
                    .map(|t| {
                        if t.contains("://") {
                            format!("{t:?}")
                        } else {
                            format!("\"https://{t}\"")
                        }
                    })
                    .collect();
                let _ = writeln!(out, "# [net]");
                let _ = writeln!(
                    out,
                    "# allow = [{}]",
                    if entries.is_empty() {
                        "\"https://api.example.com\"".to_string()
                    } else {
                        printable(&entries.join(", ")).into_owned()
                    }
                );
                let _ = writeln!(
                    out,
                    "# max_response_kb = {}     # response body cap",
                    NetGrant::default().max_response_kb
                );
                let _ = writeln!(
                    out,
                    "# Loopback, private and metadata addresses stay refused unless an entry names the address."
                );
            }
            "memory" => {
                let _ = writeln!(out, "# [memory]");
                let names = if request.targets.is_empty() {
                    vec!["namespace".to_string()]
                } else {
                    request.targets.clone()
                };
                for name in names {
                    let name = format!("{name:?}");
                    let _ = writeln!(
                        out,
                        "# {} = \"read-write\"   # or \"read\"",
                        printable(&name)
                    );
                }
            }
            "env" => {
                let _ = writeln!(out, "# [env]");
                let _ = writeln!(out, "# vars = {{ NAME = \"value\" }}");
            }
            "models" => {
                let routes = toml_strings(&request.targets, "fast");
                let _ = writeln!(out, "# [models]");
                let _ = writeln!(
                    out,
                    "# routes = [{routes}]     # names of the operator's [models.routes]"
                );
                let _ = writeln!(
                    out,
                    "# budget = {{ tokens_per_day = 200000, cost_per_day = 1.0 }}   # per UTC day; none: no limit"
                );
            }
            "tools" => {
                let allow = toml_strings(&request.targets, "plugin/tool");
                let _ = writeln!(out, "# [tools]");
                let _ = writeln!(
                    out,
                    "# allow = [{allow}]     # `*`, `plugin/*` or `plugin/tool`"
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "# This version of Warden cannot grant `{capability}` yet."
                );
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "# Per-call limits (the defaults).");
    let limits = Grant::default().to_toml();
    out.push_str(&limits);
    out
}

/// `values` (else `example`) as the items of a TOML array: `"a", "b"`.
fn toml_strings(values: &[String], example: &str) -> String {
    let values: Vec<&str> = if values.is_empty() {
        vec![example]
    } else {
        values.iter().map(String::as_str).collect()
    };
    values
        .into_iter()
        .map(|value| printable(&toml::Value::from(value).to_string()).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}
