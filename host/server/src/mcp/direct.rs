//! A plain 2026-07-28 `tools/call` over HTTP, answered in its request's own task.
//!
//! rmcp serves a request without a session by starting a service for it: a task for
//! the service and one for the request, with channels between them and the HTTP
//! handler, after decoding the message through its generic enum and encoding it again
//! to check the headers against it. On this 2-core VM such a call took about 75 µs
//! more than the same call over the REST route (`BENCHMARKS.md`). The request that
//! matters for speed, a plain `tools/call`, is answered here instead, by the
//! handler's own code ([`Handler::call_plain`]), when it is exactly this:
//!
//! - `POST` without `Mcp-Session-Id`; `MCP-Protocol-Version: 2026-07-28`, `Mcp-Method:
//!   tools/call` and `Mcp-Name` (each once; the name the body's); no `Mcp-Param-*`
//!   header; `Content-Type: application/json`; an `Accept` that names both
//!   `application/json` and `text/event-stream`, without parameters; a body of a
//!   stated length;
//! - a body of `jsonrpc`, `id`, `method` and `params`, whose members are `name`,
//!   `arguments` and `_meta`; `_meta` holds the protocol version (2026-07-28), the
//!   client's capabilities (neither URL elicitation nor tasks) and perhaps its
//!   `clientInfo`, and nothing else (no progress token, no trace, no held call's
//!   `requestState`).
//!
//! rmcp also checks `Mcp-Param-*` headers against the parameters a tool's input schema
//! sends as headers (SEP-2243's `x-mcp-header`). Warden's input schemas are made from
//! the component's WIT types and never declare one, so a plain call has nothing to
//! check there.
//!
//! Anything else goes to rmcp untouched, its body as it came. The answer is the one
//! rmcp gives such a request: 200, one JSON body, the JSON-RPC response or error
//! (the test `serve::mcp_direct` compares the two).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use rmcp::model::{ClientCapabilities, ServerJsonRpcMessage, ServerResult};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::http::{Authorizer, Principal, refuse};
use super::{Handler, Shared};

/// The protocol revision served here.
const REVISION: &str = "2026-07-28";

/// The largest body read here; a larger one goes to rmcp.
const MAX_BODY: u64 = 1 << 20;

/// The body of a plain call: its `_meta` as read here.
type PlainCall<'a> = super::plain::PlainCall<'a, PlainMeta>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainMeta {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: String,
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities")]
    capabilities: ClientCapabilities,
    #[serde(rename = "io.modelcontextprotocol/clientInfo", default)]
    #[expect(dead_code, reason = "allowed, not used")]
    client_info: Option<serde_json::Value>,
}

/// Answers a plain call itself; passes anything else on to rmcp (`next`).
pub(super) async fn answer_plain(shared: Arc<Shared>, request: Request, next: Next) -> Response {
    if !plain_headers(request.headers()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY as usize).await {
        Ok(body) => body,
        Err(err) => {
            let message = format!("could not read the request body: {err}; send it whole");
            return refuse(StatusCode::BAD_REQUEST, "bad-request", message);
        }
    };
    let call = serde_json::from_slice::<PlainCall>(&body)
        .ok()
        .filter(|call| is_plain(call, &parts.headers));
    let (Some(call), Some(principal)) = (call, parts.extensions.get::<Principal>()) else {
        return next.run(Request::from_parts(parts, Body::from(body))).await;
    };
    let handler = Handler::new(shared, None);
    let authorizer = parts.extensions.get::<Authorizer>();
    // The client gone (this future dropped) stops the call; it is on the audit record
    // as cancelled.
    let cancel = CancellationToken::new();
    let stop = cancel.clone().drop_guard();
    let arguments = call.params.arguments.unwrap_or_default();
    let outcome = handler
        .call_plain(
            &principal.0,
            authorizer,
            &call.params.name,
            arguments,
            &cancel,
        )
        .await;
    stop.disarm();
    let message = match outcome {
        Ok(result) => ServerJsonRpcMessage::response(ServerResult::CallToolResult(result), call.id),
        Err(error) => ServerJsonRpcMessage::error(error, Some(call.id)),
    };
    match serde_json::to_vec(&message) {
        Ok(json) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            Bytes::from(json),
        )
            .into_response(),
        Err(err) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("could not encode the answer: {err}"),
        ),
    }
}

/// Whether the headers are those of a plain call (the body still to be checked).
fn plain_headers(headers: &HeaderMap) -> bool {
    let once = |name: &str, wanted: Option<&str>| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => wanted.is_none_or(|w| value.as_bytes() == w.as_bytes()),
            _ => false,
        }
    };
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    !headers.contains_key("mcp-session-id")
        && !headers.contains_key(header::TRANSFER_ENCODING)
        && length.is_some_and(|n| n <= MAX_BODY)
        && once("mcp-protocol-version", Some(REVISION))
        && once("mcp-method", Some("tools/call"))
        && once("mcp-name", None)
        && !headers
            .keys()
            .any(|name| name.as_str().starts_with("mcp-param-"))
        && once(header::CONTENT_TYPE.as_str(), None)
        && headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| essence(v.as_bytes()).eq_ignore_ascii_case(b"application/json"))
        && accepts_both(headers)
}

/// The media type of a `Content-Type` value, without its parameters.
fn essence(value: &[u8]) -> &[u8] {
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    value[..end].trim_ascii()
}

/// `Accept` names both JSON and event streams, and no entry has parameters (a
/// weight among them), which rmcp would weigh.
fn accepts_both(headers: &HeaderMap) -> bool {
    let (mut json, mut events) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for entry in value.split(',') {
            if entry.contains(';') || entry.contains('"') {
                return false;
            }
            let entry = entry.trim();
            json |= entry.eq_ignore_ascii_case("application/json");
            events |= entry.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && events
}

/// Whether `call` is plain: a `tools/call` of the tool its headers name, in this
/// revision, from a client that takes neither holds nor tasks.
fn is_plain(call: &PlainCall, headers: &HeaderMap) -> bool {
    let Some(meta) = &call.params.meta else {
        return false;
    };
    let capabilities = &meta.capabilities;
    let takes_holds = capabilities
        .elicitation
        .as_ref()
        .is_some_and(|e| e.url.is_some());
    call.method == "tools/call"
        && meta.protocol_version == REVISION
        && headers
            .get("mcp-name")
            .is_some_and(|v| v.as_bytes() == call.params.name.as_bytes())
        && !takes_holds
        && !capabilities.supports_tasks()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const PLAIN: &[(&str, &str)] = &[
        ("content-type", "application/json"),
        ("content-length", "200"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "text__word-count"),
    ];

    fn body() -> Value {
        json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {
                "name": "text__word-count",
                "arguments": {"text": "a b"},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                },
            },
        })
    }

    fn plain(body: &Value, headers: &HeaderMap) -> bool {
        let bytes = serde_json::to_vec(body).unwrap();
        serde_json::from_slice::<PlainCall>(&bytes).is_ok_and(|call| is_plain(&call, headers))
    }

    #[test]
    fn a_plain_call_is_answered_here() {
        assert!(plain_headers(&headers(PLAIN)));
        assert!(plain(&body(), &headers(PLAIN)));
        let mut split = headers(&PLAIN[..2]);
        split.append("accept", HeaderValue::from_static("text/event-stream"));
        split.append("accept", HeaderValue::from_static("Application/JSON"));
        for (name, value) in &PLAIN[3..] {
            split.append(*name, HeaderValue::from_static(value));
        }
        assert!(plain_headers(&split), "Accept in two headers, any case");
    }

    #[test]
    fn other_headers_go_to_rmcp() {
        let changed = |name: &'static str, value: Option<&'static str>| {
            let mut map: Vec<(&str, &str)> =
                PLAIN.iter().filter(|(n, _)| *n != name).copied().collect();
            if let Some(value) = value {
                map.push((name, value));
            }
            plain_headers(&headers(&map))
        };
        assert!(!changed("mcp-protocol-version", Some("2025-11-25")));
        assert!(!changed("mcp-protocol-version", None));
        assert!(!changed("mcp-method", Some("tools/list")));
        assert!(!changed("mcp-name", None));
        assert!(!changed("content-type", Some("text/plain")));
        assert!(
            !changed("content-length", None),
            "a body of no stated length"
        );
        assert!(!changed("content-length", Some("2000000")));
        assert!(!changed("accept", Some("application/json")));
        assert!(!changed(
            "accept",
            Some("application/json;q=0, text/event-stream")
        ));
        let mut more = headers(PLAIN);
        more.append("mcp-session-id", HeaderValue::from_static("s"));
        assert!(!plain_headers(&more), "a session");
        let mut more = headers(PLAIN);
        more.append("mcp-param-region", HeaderValue::from_static("eu"));
        assert!(!plain_headers(&more), "a header parameter");
        let mut more = headers(PLAIN);
        more.append("mcp-method", HeaderValue::from_static("tools/call"));
        assert!(!plain_headers(&more), "a header twice");
    }

    #[test]
    fn other_bodies_go_to_rmcp() {
        let with = |path: &[&str], value: Value| {
            let mut body = body();
            let mut at = &mut body;
            for key in &path[..path.len() - 1] {
                at = &mut at[*key];
            }
            at[path[path.len() - 1]] = value;
            plain(&body, &headers(PLAIN))
        };
        let meta = ["params", "_meta"];
        assert!(!with(&["method"], json!("tools/list")));
        assert!(!with(&["jsonrpc"], json!("1.0")));
        assert!(
            !with(&["params", "name"], json!("text__other")),
            "not the header's name"
        );
        assert!(!with(&["params", "task"], json!({})));
        assert!(!with(&["params", "requestState"], json!("held")));
        assert!(!with(&[meta[0], meta[1], "progressToken"], json!(1)));
        assert!(!with(&[meta[0], meta[1], "traceparent"], json!("00-…")));
        assert!(!with(
            &[meta[0], meta[1], "io.modelcontextprotocol/protocolVersion"],
            json!("2025-11-25")
        ));
        assert!(
            !with(
                &[
                    meta[0],
                    meta[1],
                    "io.modelcontextprotocol/clientCapabilities"
                ],
                json!({"elicitation": {"url": {}}})
            ),
            "a client that takes holds"
        );
        assert!(
            with(
                &[
                    meta[0],
                    meta[1],
                    "io.modelcontextprotocol/clientCapabilities"
                ],
                json!({"elicitation": {"form": {}}, "roots": {}})
            ),
            "capabilities that change nothing here"
        );
        let mut no_meta = body();
        no_meta["params"].as_object_mut().unwrap().remove("_meta");
        assert!(!plain(&no_meta, &headers(PLAIN)));
    }
}
