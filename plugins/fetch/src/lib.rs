//! The `fetch` plugin: HTTP GET through the host's `wasi:http/outgoing-handler`, with
//! HTML reduced to readable text. The host decides which requests leave the sandbox;
//! this crate reports its refusals with the host's error code.
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(
        dead_code,
        reason = "tools are exported only to wasm; natively only unit tests run"
    )
)]

mod html;
mod http;
mod url;

use warden_sdk::log;

warden_sdk::wit_bindgen::generate!({
    world: "warden:fetch/fetch",
    path: ["../../wit", "wit"],
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: { "warden:host/log@0.1.0": warden_sdk::host::log },
});

/// Body bytes read when the caller gives no `max-bytes`.
const DEFAULT_MAX_BYTES: u32 = 256 * 1024;
/// Upper bound of `max-bytes`.
const MAX_BYTES: u32 = 4 * 1024 * 1024;

struct Fetch;

impl Guest for Fetch {
    fn get(url: String, max_bytes: Option<u32>, raw: Option<bool>) -> Result<Response, String> {
        let parsed = url::Url::parse(&url).map_err(|e| format!("GET {url}: {e}"))?;
        let max = max_bytes.unwrap_or(DEFAULT_MAX_BYTES).clamp(1, MAX_BYTES);
        log::debug_with("GET", &[("url", &url)]);
        let answer = http::get(&parsed, u64::from(max)).map_err(|e| format!("GET {url}: {e}"))?;

        let content_type = answer
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| media_type(value));
        if let Some(ct) = &content_type
            && !is_text(ct)
        {
            return Err(format!(
                "GET {url}: the body is not text (content-type {ct}, status {}); this tool returns text only",
                answer.status
            ));
        }
        if content_type.is_none() && answer.body.iter().take(1024).any(|b| *b == 0) {
            return Err(format!(
                "GET {url}: the body looks binary (no content-type, NUL bytes); this tool returns text only"
            ));
        }

        let text = String::from_utf8_lossy(&answer.body);
        let is_html = content_type
            .as_deref()
            .is_some_and(|ct| ct == "text/html" || ct == "application/xhtml+xml");
        let body = if is_html && !raw.unwrap_or(false) {
            html::to_text(&text)
        } else {
            text.into_owned()
        };
        Ok(Response {
            url,
            status: answer.status,
            headers: answer
                .headers
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
            content_type,
            body,
            body_bytes: answer.body.len() as u64,
            truncated: answer.truncated,
        })
    }
}

/// `text/html; charset=utf-8` → `text/html`.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether a media type is text that is worth returning to a model.
fn is_text(media: &str) -> bool {
    media.starts_with("text/")
        || media.ends_with("+json")
        || media.ends_with("+xml")
        || matches!(
            media,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/ecmascript"
                | "application/x-www-form-urlencoded"
                | "application/yaml"
                | "application/toml"
                | "application/x-ndjson"
        )
}

// Exported only when building the component: natively (unit tests) the export symbols
// would be named like libc's `read` and `write` and replace them in the test binary.
#[cfg(target_arch = "wasm32")]
export!(Fetch);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(media_type("Text/HTML; charset=UTF-8"), "text/html");
        assert!(is_text("text/plain"));
        assert!(is_text("application/ld+json"));
        assert!(is_text("application/json"));
        assert!(!is_text("image/png"));
        assert!(!is_text("application/octet-stream"));
    }
}
