//! Warden's own HTTP/1.1 sender for guests: it connects only to the addresses the
//! policy validated, speaks TLS with the request's host name as SNI, and bounds every
//! wait by the call's deadline.
//!
//! wasmtime-wasi-http's default sender resolves names itself (so a checked name could
//! resolve again to another address), filters no address and waits up to 600 s; it is
//! not compiled in.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::net::TcpStream;
use tokio::time::Sleep;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, WasiBody};

use super::allow::{Destination, Host, Scheme};
use super::error::TlsError;

/// The future that drives a connection's I/O after the response head arrived.
pub type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// One validated request, ready to go.
pub struct Outbound {
    pub dest: Destination,
    /// Addresses the policy allowed, in the resolver's order.
    pub addrs: Vec<SocketAddr>,
    /// The call's deadline: nothing waits past it.
    pub deadline: Instant,
    pub connect_timeout: Option<Duration>,
    pub first_byte_timeout: Option<Duration>,
    pub between_bytes_timeout: Option<Duration>,
    /// Largest response body, in bytes.
    pub max_response: u64,
    pub tls: Arc<rustls::ClientConfig>,
    /// Counts the response body bytes the guest reads.
    pub read: Arc<AtomicU64>,
}

/// Longest a connection attempt may take when the guest sets no timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Outbound {
    /// `wanted`, or `fallback`, but never past the deadline.
    fn bounded(&self, wanted: Option<Duration>, fallback: Duration) -> Duration {
        let left = self.deadline.saturating_duration_since(Instant::now());
        wanted.unwrap_or(fallback).min(left)
    }

    /// Sends `request` and returns the response head with a capped body.
    pub async fn send(
        self,
        request: http::Request<WasiBody>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let stream = self.connect().await?;
        let io: Box<dyn Io> = match self.dest.scheme {
            Scheme::Http => Box::new(stream),
            Scheme::Https => {
                let name = match &self.dest.host {
                    Host::Ip(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
                    Host::Domain(name) => rustls::pki_types::ServerName::try_from(name.clone())
                        .map_err(|_| Error::HttpRequestUriInvalid)?,
                };
                let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
                let timeout = self.bounded(self.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
                let tls = tokio::time::timeout(timeout, connector.connect(name, stream))
                    .await
                    .map_err(|_| Error::ConnectionTimeout)?
                    .map_err(Error::Tls)?;
                Box::new(tls)
            }
        };
        let mut request = without_unsent_body(request);
        let timeout = self.bounded(self.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let (mut sender, conn) = tokio::time::timeout(
            timeout,
            hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(io)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;

        // Over HTTP/1.1 to an origin the request line carries the path only.
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(path)
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;

        let mut conn = Some(Box::pin(conn));
        let first_byte = self.bounded(self.first_byte_timeout, Duration::MAX);
        let send = sender.send_request(request);
        tokio::pin!(send);
        // Drive the connection until the response head arrives; if the connection
        // ends first, the request's own future says why.
        let wait = std::future::poll_fn(|cx| {
            if let Poll::Ready(response) = send.as_mut().poll(cx) {
                return Poll::Ready(response.map_err(Error::from));
            }
            if let Some(io) = conn.as_mut()
                && let Poll::Ready(done) = io.as_mut().poll(cx)
            {
                conn = None;
                if let Err(err) = done {
                    return Poll::Ready(Err(Error::from(err)));
                }
                return send.as_mut().poll(cx).map_err(Error::from);
            }
            Poll::Pending
        });
        let response = tokio::time::timeout(first_byte, wait)
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        if let Some(length) = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            && length > self.max_response
        {
            return Err(Error::HttpResponseBodySize(Some(length)));
        }
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let response = response.map(|incoming| {
            CappedBody {
                inner: incoming.map_err(Error::from).boxed_unsync(),
                left: self.max_response,
                cap: self.max_response,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                idle: self.between_bytes_timeout.map(|d| (d, None)),
                read: self.read.clone(),
            }
            .boxed_unsync()
        });
        let io: IoFuture = Box::new(async move {
            match conn {
                Some(io) => io.await.map_err(Error::from),
                None => Ok(()),
            }
        });
        Ok((response, io))
    }

    /// Connects to the first validated address that answers.
    async fn connect(&self) -> Result<TcpStream, Error> {
        let mut last = Error::DestinationUnavailable;
        for addr in &self.addrs {
            let timeout = self.bounded(self.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
            if timeout.is_zero() {
                return Err(Error::ConnectionTimeout);
            }
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                    last = Error::ConnectionRefused;
                }
                Ok(Err(err)) => last = Error::Connect(err),
                Err(_) => last = Error::ConnectionTimeout,
            }
        }
        Err(last)
    }
}

/// `request` with an empty body when hyper would send none of its body (a GET, HEAD
/// or CONNECT without `Content-Length` or `Transfer-Encoding`, or a `Content-Length` of
/// 0); the guest's body is then drained in the background and discarded, as hyper
/// would discard it.
///
/// Given to hyper, such a body is dropped as soon as the request head is written, and
/// the guest's body stream then reports itself closed: a guest that writes to it after
/// `handle` (wstd writes even an empty body) fails the request as "connection reset"
/// and drops the response while the upstream is still sending it. The drain ends when
/// the guest finishes or drops its body, at the latest with the call's store.
fn without_unsent_body(request: http::Request<WasiBody>) -> http::Request<WasiBody> {
    if !sends_no_body(&request) {
        return request;
    }
    let (parts, mut body) = request.into_parts();
    tokio::spawn(async move { while let Some(Ok(_)) = body.frame().await {} });
    let empty = http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync();
    http::Request::from_parts(parts, empty)
}

/// True when hyper's HTTP/1.1 client sends no body bytes for `request` whatever its
/// body holds.
fn sends_no_body<B>(request: &http::Request<B>) -> bool {
    let headers = request.headers();
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return false;
    }
    match headers.get(http::header::CONTENT_LENGTH) {
        Some(length) => {
            length
                .to_str()
                .ok()
                .and_then(|l| l.trim().parse::<u64>().ok())
                == Some(0)
        }
        None => matches!(
            *request.method(),
            http::Method::GET | http::Method::HEAD | http::Method::CONNECT
        ),
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A response body that ends with an error past `cap` bytes, at the call's deadline, or
/// after `idle` without a frame.
struct CappedBody {
    inner: WasiBody,
    left: u64,
    cap: u64,
    deadline: Pin<Box<Sleep>>,
    idle: Option<(Duration, Option<Pin<Box<Sleep>>>)>,
    read: Arc<AtomicU64>,
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.left {
                        this.left = 0;
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(this.cap)))));
                    }
                    this.left -= len;
                    this.read.fetch_add(len, Ordering::Relaxed);
                }
                if let Some((_, timer)) = &mut this.idle {
                    *timer = None;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(Error::HttpResponseTimeout)));
                }
                if let Some((wait, timer)) = &mut this.idle {
                    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(*wait)));
                    if timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
                    }
                }
                Poll::Pending
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The TLS client configuration: the Mozilla root set (webpki-roots), plus any extra
/// roots an operator trusts (PEM).
pub fn tls_config(extra_roots_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if !extra_roots_pem.is_empty() {
        use rustls::pki_types::pem::PemObject as _;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(extra_roots_pem) {
            roots.add(cert?).map_err(TlsError::Root)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri("http://a.test/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn which_requests_hyper_sends_without_their_body() {
        assert!(sends_no_body(&request("GET", &[])));
        assert!(sends_no_body(&request("HEAD", &[])));
        assert!(sends_no_body(&request("POST", &[("content-length", "0")])));
        assert!(!sends_no_body(&request("GET", &[("content-length", "5")])));
        assert!(!sends_no_body(&request(
            "GET",
            &[("transfer-encoding", "chunked")]
        )));
        assert!(!sends_no_body(&request("POST", &[])));
        assert!(!sends_no_body(&request("PUT", &[("content-length", "x")])));
    }
}
