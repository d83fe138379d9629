//! A small HTTP/1.1 client for provider calls: JSON in, status and JSON text out,
//! within a timeout. Providers are the operator's configuration (trusted), so unlike a
//! guest's requests these are not address-checked.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

use super::classify::{Failure, FailureKind};

/// Largest provider answer read.
const MAX_RESPONSE: usize = 16 << 20;

/// What came back.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
}

/// POSTs `body` to `url` with `headers`, within `timeout`.
pub(crate) async fn post_json(
    tls: &Arc<rustls::ClientConfig>,
    url: &str,
    headers: &[(&str, String)],
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<Answer, Failure> {
    match tokio::time::timeout(timeout, post(tls, url, headers, body)).await {
        Ok(answer) => answer,
        Err(_) => Err(Failure::new(
            FailureKind::Timeout,
            format!("no answer from {url} within {} ms", timeout.as_millis()),
        )),
    }
}

async fn post(
    tls: &Arc<rustls::ClientConfig>,
    url: &str,
    headers: &[(&str, String)],
    body: &serde_json::Value,
) -> Result<Answer, Failure> {
    let connect = |e: String| Failure::new(FailureKind::Connect, format!("{url}: {e}"));
    let parsed = url::Url::parse(url).map_err(|e| connect(e.to_string()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| connect("no host".into()))?
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let stream = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| connect(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let io: Box<dyn Io> = if parsed.scheme() == "https" {
        let name =
            rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|e| connect(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, stream)
            .await
            .map_err(|e| connect(format!("TLS: {e}")))?;
        Box::new(tls)
    } else {
        Box::new(stream)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| connect(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let mut request = http::Request::post(path)
        .header(http::header::HOST, parsed.authority())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "warden-router");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| Failure::new(FailureKind::BadRequest, e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| connect(e.to_string()))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = Limited::new(response.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| {
            Failure::new(
                FailureKind::MalformedResponse,
                format!("reading the answer: {e}"),
            )
        })?
        .to_bytes();
    Ok(Answer {
        status,
        retry_after,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}
