//! What can go wrong when the process's logs and traces are set up.

use std::error::Error as _;
use std::fmt;

use opentelemetry_otlp::ExporterBuildError;
use tracing_subscriber::util::TryInitError;

use crate::{ENDPOINT_ENV, PROTOCOL_ENV};

/// Logs or traces that could not be set up.
///
/// `{}` is the message; `{:#}` adds each cause after `": "`, as `anyhow` prints a chain.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` names a protocol Warden does not export over.
    Protocol {
        /// The value the variable holds.
        value: String,
    },
    /// The OTLP exporter could not be built from the configured endpoint.
    Exporter(#[source] ExporterBuildError),
    /// A log subscriber is already installed in this process.
    Subscriber(#[source] TryInitError),
}

impl fmt::Display for TelemetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol { value } => write!(
                f,
                "{PROTOCOL_ENV}={value:?}: Warden exports traces over OTLP/HTTP; use http/protobuf or http/json"
            ),
            Self::Exporter(_) => write!(f, "setting up the OTLP exporter ({ENDPOINT_ENV})"),
            Self::Subscriber(_) => f.write_str("installing the log subscriber"),
        }?;
        if f.alternate() {
            let mut cause = self.source();
            while let Some(err) = cause {
                write!(f, ": {err}")?;
                cause = err.source();
            }
        }
        Ok(())
    }
}
