//! Outbound network policy: the one place that decides whether a guest's HTTP request
//! leaves the machine.
//!
//! Every `wasi:http/outgoing-handler.handle` of a guest reaches
//! [`NetPolicy::send_request`]. Until a grant names destinations (the grants issue),
//! every request is refused with `HttpRequestDenied` and recorded as a [`Denial`];
//! wasmtime-wasi-http's default sender, which resolves names itself and filters no
//! address, is never used.

use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::denial::Denial;

/// The network policy of one call.
pub struct NetPolicy {
    plugin: Arc<str>,
    pub(crate) denials: Vec<Denial>,
}

impl NetPolicy {
    /// A policy that allows no destination at all (the default of every plugin).
    pub(crate) fn deny_all(plugin: Arc<str>) -> Self {
        Self {
            plugin,
            denials: Vec::new(),
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for NetPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let target = format!("{} {}", request.method(), request.uri());
        let denial = Denial {
            capability: "net",
            target,
            reason: format!(
                "plugin \"{}\" has no network grant; an operator allows destinations with [net].allow in its grant",
                self.plugin
            ),
        };
        tracing::info!(plugin = %self.plugin, %denial, "outbound request denied");
        self.denials.push(denial);
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}
