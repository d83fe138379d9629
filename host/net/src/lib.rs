//! Outbound networking for Warden: the one place that decides where a request may go.
//!
//! - [`AllowList`] and [`Destination`]: the `[net] allow` entries of a grant, parsed
//!   and matched (schemes, hosts, wildcards, ports; IP literals in any spelling);
//! - [`restricted`]: loopback, private, link-local, metadata and similar addresses;
//! - [`Network`]: name resolution and TLS roots shared by every outbound request;
//! - `connect`: Warden's own connector to a validated address, with timeouts and a
//!   response-size cap, used by guests' `wasi:http` and by the model router.
//!
//! It touches the network only when asked to connect; it reads no configuration of
//! its own.

mod address;
mod allow;
mod connect;
mod error;
mod resolve;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod spellings;

pub use self::address::restricted;
pub use self::allow::{AllowList, Destination, Host, Scheme, canonical_ip};
pub use self::connect::{IoFuture, Outbound, tls_config};
pub use self::error::{AllowListError, DestinationError, NotDnsName, TlsError};
pub use self::resolve::Network;
