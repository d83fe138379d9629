//! Name resolution and TLS roots, shared by every call of a runtime.
//!
//! Warden resolves a guest's host names itself (the system resolver, within the call's
//! deadline) so it can check and then connect to exactly the addresses it checked.
//! Operators (and tests) can pin a name to addresses, like curl's `--resolve`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use wasmtime_wasi_http::Error;

/// Longest a name lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolver overrides and the TLS client configuration.
#[derive(Default)]
pub struct Network {
    pinned: RwLock<HashMap<String, Vec<IpAddr>>>,
    extra_roots: RwLock<Vec<u8>>,
    tls: RwLock<Option<Arc<rustls::ClientConfig>>>,
}

impl Network {
    /// Resolves `name` to these addresses instead of asking the system resolver. The
    /// address checks still apply to them.
    pub fn pin(&self, name: &str, addrs: Vec<IpAddr>) {
        self.pinned
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.trim_end_matches('.').to_ascii_lowercase(), addrs);
    }

    /// Trusts these root certificates (PEM) besides the built-in Mozilla set.
    pub fn trust_roots_pem(&self, pem: &[u8]) -> Result<(), crate::TlsError> {
        // Check before keeping them.
        super::connect::tls_config(pem)?;
        let mut roots = self.extra_roots.write().unwrap_or_else(|e| e.into_inner());
        roots.extend_from_slice(pem);
        roots.push(b'\n');
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    /// The TLS client configuration, built once.
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        if let Some(config) = &*self.tls.read().unwrap_or_else(|e| e.into_inner()) {
            return config.clone();
        }
        let roots = self.extra_roots.read().unwrap_or_else(|e| e.into_inner());
        // The extra roots were checked when they were added, and the built-in set
        // always builds.
        let config = super::connect::tls_config(&roots)
            .or_else(|_| super::connect::tls_config(&[]))
            .expect("the built-in TLS configuration builds");
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) = Some(config.clone());
        config
    }

    /// The addresses of `name`, port `port`, within `deadline`.
    pub async fn resolve(
        &self,
        name: &str,
        port: u16,
        deadline: Instant,
    ) -> Result<Vec<SocketAddr>, Error> {
        let pinned = self
            .pinned
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        if let Some(addrs) = pinned {
            return Ok(addrs
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let lookup = tokio::net::lookup_host((name.to_string(), port));
        match tokio::time::timeout(left.min(LOOKUP_TIMEOUT), lookup).await {
            Err(_) => Err(Error::DnsTimeout),
            Ok(Err(err)) => Err(Error::DnsError {
                rcode: Some(err.to_string()),
                info_code: None,
            }),
            Ok(Ok(addrs)) => Ok(addrs.collect()),
        }
    }
}
