//! HTTP to providers: one pooled `reqwest` client per provider, made when the router is,
//! so consecutive calls reuse a kept-alive connection instead of opening one each.
//! Providers are the operator's configuration (trusted), so unlike a guest's requests
//! these are not address-checked; no proxy from the environment is used and redirects
//! are not followed.

use std::sync::Arc;
use std::time::Duration;

use super::classify::{Failure, FailureKind};

/// Largest provider answer read whole (a streamed answer is read as it comes).
const MAX_RESPONSE: usize = 16 << 20;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// A client for one provider: a connection pool with TLS by `tls`.
pub(crate) fn client(
    tls: &Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(rustls::ClientConfig::clone(tls))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(POOL_IDLE)
        .user_agent("warden-router")
        .build()
}

/// A whole answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
}

fn failure(url: &str, err: &reqwest::Error) -> Failure {
    let kind = if err.is_timeout() {
        FailureKind::Timeout
    } else if err.is_body() || err.is_decode() {
        FailureKind::MalformedResponse
    } else {
        FailureKind::Connect
    };
    Failure::new(kind, format!("{url}: {}", describe(err)))
}

/// reqwest's Display leaves out the cause (refused, reset…); the chain has it.
fn describe(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

fn timed_out(url: &str, timeout: Duration) -> Failure {
    Failure::new(
        FailureKind::Timeout,
        format!("no answer from {url} within {} ms", timeout.as_millis()),
    )
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    body: &serde_json::Value,
) -> Result<reqwest::Response, Failure> {
    let mut request = client
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.map_err(|e| failure(url, &e))
}

/// Reads `response`'s whole body (up to [`MAX_RESPONSE`]).
async fn read(url: &str, mut response: reqwest::Response) -> Result<Answer, Failure> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        Failure::new(
            FailureKind::MalformedResponse,
            format!("{url}: reading the answer: {}", describe(&e)),
        )
    })? {
        if bytes.len() + chunk.len() > MAX_RESPONSE {
            return Err(Failure::new(
                FailureKind::MalformedResponse,
                format!("{url}: the answer is larger than {MAX_RESPONSE} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        retry_after,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// POSTs `body` to `url` with `headers` and reads the whole answer, within `timeout`.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<Answer, Failure> {
    let call = async { read(url, send(client, url, headers, body).await?).await };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Err(timed_out(url, timeout)))
}

/// POSTs `body` to `url` with `headers` for a streamed answer: the response once its
/// head is in (within `timeout`), or the provider's error answer, classified.
pub(crate) async fn open_stream(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<reqwest::Response, Failure> {
    let call = async {
        let response = send(client, url, headers, body).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let answer = read(url, response).await?;
        Err(Failure::from_status(
            answer.status,
            &answer.body,
            answer.retry_after.as_deref(),
        ))
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Err(timed_out(url, timeout)))
}

/// The next piece of a streamed body, within `idle`: `None` at its end.
pub(crate) async fn next_chunk(
    url: &str,
    response: &mut reqwest::Response,
    idle: Duration,
) -> Result<Option<bytes::Bytes>, Failure> {
    match tokio::time::timeout(idle, response.chunk()).await {
        Err(_) => Err(Failure::new(
            FailureKind::Timeout,
            format!("{url}: the stream sent nothing for {} ms", idle.as_millis()),
        )),
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(e)) => Err(Failure::new(
            FailureKind::Connect,
            format!("{url}: the stream broke off: {}", describe(&e)),
        )),
    }
}
