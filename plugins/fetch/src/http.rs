//! One blocking HTTP GET over `wasi:http/outgoing-handler`.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

use crate::url::Url;

/// What came back: status, headers, and at most `max` body bytes.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) truncated: bool,
}

/// Sends `GET url` and reads at most `max` bytes of the body.
pub(crate) fn get(url: &Url, max: u64) -> Result<Answer, String> {
    let headers = Fields::new();
    headers
        .append("user-agent", b"warden-fetch/0.1")
        .map_err(|e| format!("building the request: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let set = request
        .set_method(&Method::Get)
        .and_then(|()| {
            request.set_scheme(Some(if url.https {
                &Scheme::Https
            } else {
                &Scheme::Http
            }))
        })
        .and_then(|()| request.set_authority(Some(&url.authority)))
        .and_then(|()| request.set_path_with_query(Some(&url.path_and_query)));
    if set.is_err() {
        return Err("the host rejected the URL's parts (scheme, host or path)".to_owned());
    }

    let future = outgoing_handler::handle(request, None).map_err(describe)?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(describe(code)),
        Some(Err(())) | None => {
            return Err("the host lost the response (future already taken)".to_owned());
        }
    };

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let body = response
        .consume()
        .map_err(|()| "the response body was already taken".to_owned())?;
    let stream = body
        .stream()
        .map_err(|()| "the response body stream was already taken".to_owned())?;
    let mut bytes = Vec::new();
    let mut truncated = false;
    loop {
        let room = max - bytes.len() as u64;
        if room == 0 {
            // One more byte tells whether the body really was longer.
            truncated = matches!(stream.blocking_read(1), Ok(more) if !more.is_empty());
            break;
        }
        match stream.blocking_read(room.min(64 * 1024)) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(err)) => {
                let detail = wasip2::http::types::http_error_code(&err)
                    .map(describe)
                    .unwrap_or_else(|| err.to_debug_string());
                return Err(format!(
                    "reading the body after {} bytes: {detail}",
                    bytes.len()
                ));
            }
        }
    }
    drop(stream);
    Ok(Answer {
        status,
        headers,
        body: bytes,
        truncated,
    })
}

/// `ErrorCode::HttpRequestDenied` → "the host refused the request (wasi:http error
/// http-request-denied); ...". The code is the WIT case name so that it matches the
/// host's logs and documentation.
pub(crate) fn describe(code: ErrorCode) -> String {
    let debug = format!("{code:?}");
    let debug = debug.strip_prefix("ErrorCode::").unwrap_or(&debug);
    let (name, payload) = match debug.split_once('(') {
        Some((name, rest)) => (name, Some(rest.strip_suffix(')').unwrap_or(rest))),
        None => (debug, None),
    };
    let case = kebab(name);
    let hint = match code {
        ErrorCode::HttpRequestDenied => {
            ": the host refused the request; an operator allows hosts with [net].allow in this plugin's grant"
        }
        ErrorCode::DestinationIpProhibited => {
            ": the host refused the address; private, loopback and metadata addresses need an explicit grant entry"
        }
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) => ": the host name could not be resolved",
        ErrorCode::ConnectionRefused | ErrorCode::DestinationUnavailable => {
            ": the server could not be reached"
        }
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout => {
            ": the server did not answer in time"
        }
        _ => "",
    };
    match payload {
        Some(payload) if !payload.is_empty() => {
            format!("wasi:http error {case} ({payload}){hint}")
        }
        _ => format!("wasi:http error {case}{hint}"),
    }
}

/// `HttpRequestDenied` → `http-request-denied`.
fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_wit_case() {
        let text = describe(ErrorCode::HttpRequestDenied);
        assert!(
            text.starts_with("wasi:http error http-request-denied: the host refused"),
            "{text}"
        );
        assert!(text.contains("[net].allow"), "{text}");
        assert_eq!(
            describe(ErrorCode::InternalError(Some("boom".into()))),
            "wasi:http error internal-error (Some(\"boom\"))"
        );
    }
}
