//! Outbound network policy: the one place that decides whether a guest's HTTP request
//! leaves the machine, and how.
//!
//! Every `wasi:http/outgoing-handler.handle` of a guest reaches
//! [`NetPolicy::send_request`], which, in order:
//! 1. normalises the destination (scheme, host, port; IP literals in any spelling);
//! 2. refuses it unless an entry of the grant's `[net] allow` matches;
//! 3. resolves the name itself and refuses loopback, private, link-local, metadata and
//!    similar addresses (IPv4 inside IPv6 judged as IPv4) unless an entry names the
//!    address (or `localhost`) explicitly, with the request's scheme and port;
//! 4. injects the grant's `[secrets]` for that destination (the guest never sees them);
//! 5. sends through Warden's own connector ([`connect`]) to the validated address only,
//!    with connect, first-byte and total timeouts inside the call's deadline and a
//!    response-size cap. Redirects are returned to the guest, never followed.
//!
//! A refusal reaches the guest as `error-code::HTTP-request-denied` and the caller as a
//! [`Denial`] naming the request and the reason. Where a name resolved to is said only
//! in the audit record: the caller (a model, an agent) is told the address's class.

mod secrets;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::denial::Denial;
use warden_config::grant::Grant;
pub use warden_net::{AllowList, Destination, Host, Network, Scheme, restricted};
use warden_net::{IoFuture, Outbound};

/// One HTTP request a guest made, as the host saw it (for the caller and the audit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetUse {
    /// `GET`, `POST`, …
    pub method: String,
    /// The URL as the guest gave it.
    pub url: String,
    /// The address Warden connected to.
    pub address: Option<SocketAddr>,
    /// Names of the secrets injected (never their values).
    pub secrets: Vec<String>,
    /// The response status, when a response came.
    pub status: Option<u16>,
    /// Response body bytes the guest read.
    pub bytes: u64,
}

/// A request in flight: its use, completed when the call ends.
struct Pending {
    used: NetUse,
    status: Arc<AtomicU32>,
    bytes: Arc<AtomicU64>,
}

/// The network policy of one call.
pub struct NetPolicy {
    plugin: Arc<str>,
    call_id: u64,
    allow: Arc<AllowList>,
    grant: Arc<Grant>,
    network: Arc<Network>,
    deadline: Instant,
    max_response: u64,
    record: Arc<Mutex<Record>>,
}

/// What the call's requests did, shared with their futures.
#[derive(Default)]
pub(crate) struct Record {
    pub(crate) denials: Vec<Denial>,
    uses: Vec<Pending>,
}

impl NetPolicy {
    /// The policy of one call of `plugin` under `grant`, ending at `deadline`.
    pub(crate) fn new(
        plugin: Arc<str>,
        call_id: u64,
        grant: Arc<Grant>,
        allow: Arc<AllowList>,
        network: Arc<Network>,
        deadline: Instant,
    ) -> Self {
        let max_response = grant
            .net
            .as_ref()
            .map_or(0, warden_config::grant::NetGrant::max_response_bytes);
        Self {
            plugin,
            call_id,
            allow,
            grant,
            network,
            deadline,
            max_response,
            record: Arc::default(),
        }
    }

    /// Denials recorded so far (taken).
    pub(crate) fn take_denials(&self) -> Vec<Denial> {
        std::mem::take(
            &mut self
                .record
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .denials,
        )
    }

    /// Requests sent so far, with their status and body bytes read (taken).
    pub(crate) fn take_uses(&self) -> Vec<NetUse> {
        let pending =
            std::mem::take(&mut self.record.lock().unwrap_or_else(|e| e.into_inner()).uses);
        pending
            .into_iter()
            .map(|p| NetUse {
                status: match p.status.load(Ordering::Relaxed) {
                    0 => None,
                    status => u16::try_from(status).ok(),
                },
                bytes: p.bytes.load(Ordering::Relaxed),
                ..p.used
            })
            .collect()
    }
}

type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

/// Records `denial` and returns the error the guest sees.
fn deny(record: &Mutex<Record>, (plugin, call): (&str, u64), denial: Denial) -> Error {
    tracing::info!(plugin, call, %denial, "outbound request denied");
    record
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .denials
        .push(denial);
    Error::HttpRequestDenied
}

impl WasiHttpHooks for NetPolicy {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let target = format!("{} {}", request.method(), request.uri());
        let record = self.record.clone();
        let plugin = self.plugin.clone();
        let call = self.call_id;
        let refuse_secret = {
            let (record, plugin, target) = (record.clone(), plugin.clone(), target.clone());
            move |reason: String| -> SendFuture {
                let denial = Denial::new("secrets", target, reason);
                let err = deny(&record, (&plugin, call), denial);
                Box::new(async { Err(err) })
            }
        };
        let refuse = move |reason: String| -> SendFuture {
            let denial = Denial::new("net", target.clone(), reason);
            let err = deny(&record, (&plugin, call), denial);
            Box::new(async { Err(err) })
        };
        if self.allow.is_empty() {
            return refuse(format!(
                "plugin \"{}\" has no network grant; an operator allows destinations with [net] allow in its grant",
                self.plugin
            ));
        }
        let dest = match Destination::from_uri(request.uri()) {
            Ok(dest) => dest,
            Err(err) => return refuse(crate::error::chain(err)),
        };
        if !self.allow.permits_destination(&dest) {
            return refuse(format!(
                "{dest} is not in plugin \"{}\"'s [net] allow list",
                self.plugin
            ));
        }
        let injected = match secrets::inject(&self.grant.secrets, &dest, request.headers_mut()) {
            Ok(names) => names,
            Err(reason) => return refuse_secret(reason),
        };
        let allow = self.allow.clone();
        let network = self.network.clone();
        let record = self.record.clone();
        let plugin = self.plugin.clone();
        let deadline = self.deadline;
        let call = self.call_id;
        let max_response = self.max_response;
        let method = request.method().to_string();
        let url = request.uri().to_string();
        let target = format!("{method} {url}");
        Box::new(async move {
            let addrs = validated_addresses(&network, &allow, &dest, deadline).await;
            let addrs = match addrs {
                Ok(addrs) => addrs,
                Err(Refusal::Denied { reason, told }) => {
                    let denial = Denial {
                        caller_reason: Some(told),
                        ..Denial::new("net", target, reason)
                    };
                    return Err(deny(&record, (&plugin, call), denial));
                }
                Err(Refusal::Failed(err)) => return Err(err),
            };
            let status = Arc::new(AtomicU32::new(0));
            let bytes = Arc::new(AtomicU64::new(0));
            record
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .uses
                .push(Pending {
                    used: NetUse {
                        method,
                        url,
                        address: addrs.first().copied(),
                        secrets: injected,
                        status: None,
                        bytes: 0,
                    },
                    status: status.clone(),
                    bytes: bytes.clone(),
                });
            let options = options.unwrap_or_default();
            let sent = Outbound {
                dest,
                addrs,
                deadline,
                connect_timeout: options.connect_timeout,
                first_byte_timeout: options.first_byte_timeout,
                between_bytes_timeout: options.between_bytes_timeout,
                max_response,
                tls: network.tls(),
                read: bytes,
            }
            .send(request)
            .await?;
            status.store(u32::from(sent.0.status().as_u16()), Ordering::Relaxed);
            Ok(sent)
        })
    }
}

enum Refusal {
    /// The policy refuses the destination (a denial): the reason on record, and the
    /// one the caller is told (without the address the name resolved to).
    Denied { reason: String, told: String },
    /// The lookup failed (an ordinary network error).
    Failed(Error),
}

/// The addresses of `dest` a guest may connect to: an IP literal an entry named, or
/// the resolved addresses that are public or that an entry names explicitly.
async fn validated_addresses(
    network: &Network,
    allow: &AllowList,
    dest: &Destination,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, Refusal> {
    let name = match &dest.host {
        // The entry that matched names this very address.
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, dest.port)]),
        Host::Domain(name) => name,
    };
    let resolved = network
        .resolve(name, dest.port, deadline)
        .await
        .map_err(Refusal::Failed)?;
    let mut permitted = Vec::new();
    let mut refused = Vec::new();
    for addr in resolved {
        let ip = warden_net::canonical_ip(addr.ip());
        match restricted(ip) {
            None => permitted.push(SocketAddr::new(ip, addr.port())),
            Some(class)
                if allow.names_address(ip, dest)
                    || (class == "loopback" && allow.names_localhost(dest)) =>
            {
                permitted.push(SocketAddr::new(ip, addr.port()));
            }
            Some(class) => refused.push((ip, class)),
        }
    }
    if permitted.is_empty() {
        let Some((ip, class)) = refused.first() else {
            return Err(Refusal::Failed(Error::DestinationNotFound));
        };
        let rule = "an address like this is refused unless an entry of [net] allow names it, with the scheme and port";
        return Err(Refusal::Denied {
            reason: format!(
                "{} resolves to {ip} ({class}); {rule} (\"{}://{}:{}\")",
                dest.host,
                if dest.scheme == Scheme::Https {
                    "https"
                } else {
                    "http"
                },
                host_literal(*ip),
                dest.port
            ),
            told: format!(
                "{} resolves to a restricted address ({class}); {rule}; the address is in the audit record",
                dest.host
            ),
        });
    }
    Ok(permitted)
}

fn host_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}
