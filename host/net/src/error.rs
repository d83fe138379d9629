//! What can go wrong when a destination, an allow list or TLS roots are read.
//!
//! Every error here prints its message with `{}`; `{:#}` adds each cause after
//! `": "`, as `anyhow` prints a chain.

use std::error::Error;
use std::fmt;

/// A destination (an operator's allow entry or a guest's request URI) that Warden does
/// not accept; the message says what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// A request URI whose scheme is not `http` or `https`.
    RequestScheme {
        /// The scheme as given (empty when there is none).
        scheme: String,
    },
    /// A request URI without a host.
    RequestNoHost,
    /// A request URI with `user@` in its authority.
    RequestUserInfo,
    /// A request URI whose host the URL parser rejects.
    RequestHost {
        /// The authority as given.
        host: String,
        /// Why the URL parser rejected it.
        #[source]
        source: url::ParseError,
    },
    /// A request URI whose host is no DNS name.
    #[error(transparent)]
    NotDnsName(#[from] NotDnsName),
    /// An entry without `scheme://`.
    NoScheme {
        /// The entry as written.
        text: String,
    },
    /// An entry whose scheme is not `http` or `https`.
    Scheme {
        /// The entry as written.
        text: String,
    },
    /// A `*.` wildcard where none is allowed.
    WildcardNotAllowed {
        /// The entry as written.
        text: String,
    },
    /// An entry the URL parser rejects.
    Invalid {
        /// The entry as written.
        text: String,
        /// Why the URL parser rejected it.
        #[source]
        source: url::ParseError,
    },
    /// An entry with `user:password@` (secrets belong in `[secrets]`).
    UserInfo {
        /// The entry as written.
        text: String,
    },
    /// An entry with a path, query or fragment.
    Path {
        /// The entry as written.
        text: String,
    },
    /// An entry without a host.
    NoHost {
        /// The entry as written.
        text: String,
    },
    /// A wildcard in front of something that is not a domain with a dot.
    WildcardDomain {
        /// The entry as written.
        text: String,
    },
    /// A `*` anywhere but as the whole first label.
    WildcardPlace {
        /// The entry as written.
        text: String,
    },
    /// An entry whose host is no DNS name.
    Host {
        /// The entry as written.
        text: String,
        /// What is wrong with the host.
        #[source]
        source: NotDnsName,
    },
}

impl fmt::Display for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RequestScheme { scheme } => write!(f, "scheme {scheme:?} is not http or https"),
            Self::RequestNoHost => f.write_str("the request has no host"),
            Self::RequestUserInfo => f.write_str("user info in the URL is not allowed"),
            Self::RequestHost { host, .. } => write!(f, "host {host:?} is not valid"),
            Self::NotDnsName(err) => write!(f, "{err}"),
            Self::NoScheme { text } => {
                write!(
                    f,
                    "{text:?} needs a scheme: write \"https://{text}\" (or http://)"
                )
            }
            Self::Scheme { text } => write!(f, "{text:?}: the scheme must be http or https"),
            Self::WildcardNotAllowed { text } => {
                write!(f, "{text:?}: a wildcard is not allowed here")
            }
            Self::Invalid { text, .. } => write!(f, "{text:?} is not a valid destination"),
            Self::UserInfo { text } => write!(
                f,
                "{text:?}: user info is not allowed (secrets go in [secrets])"
            ),
            Self::Path { text } => write!(
                f,
                "{text:?}: give scheme://host[:port] only; paths are not part of a destination"
            ),
            Self::NoHost { text } => write!(f, "{text:?} has no host"),
            Self::WildcardDomain { text } => write!(
                f,
                "{text:?}: a wildcard stands for one label in front of a domain with a dot, like \"https://*.example.com\""
            ),
            Self::WildcardPlace { text } => write!(
                f,
                "{text:?}: `*` is only allowed as the whole first label (\"*.example.com\")"
            ),
            Self::Host { text, .. } => write!(f, "{text:?}"),
        }?;
        causes(self, f)
    }
}

/// A host the URL parser lets through but no DNS name has (`*`, or an empty name once
/// its trailing dot is gone).
#[derive(Debug, thiserror::Error)]
#[error("host {name:?} is not a DNS name")]
pub struct NotDnsName {
    /// The host.
    pub name: String,
}

/// A `[net] allow` list with a bad entry.
#[derive(Debug, thiserror::Error)]
pub struct AllowListError {
    /// The entry's position, from 1.
    pub number: usize,
    /// What is wrong with it.
    #[source]
    pub source: DestinationError,
}

impl fmt::Display for AllowListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry #{}", self.number)?;
        causes(self, f)
    }
}

/// Root certificates (PEM) that cannot make a TLS client configuration. It prints as
/// the error it holds.
#[derive(Debug)]
pub enum TlsError {
    /// The PEM text does not parse.
    Pem(rustls::pki_types::pem::Error),
    /// A certificate rustls does not accept as a root.
    Root(rustls::Error),
    /// The client configuration could not be built.
    Config(rustls::Error),
}

impl From<rustls::pki_types::pem::Error> for TlsError {
    fn from(err: rustls::pki_types::pem::Error) -> Self {
        Self::Pem(err)
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pem(err) => write!(f, "{err}"),
            Self::Root(err) | Self::Config(err) => write!(f, "{err}"),
        }?;
        causes(self, f)
    }
}

impl Error for TlsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Pem(err) => err.source(),
            Self::Root(err) | Self::Config(err) => err.source(),
        }
    }
}

/// With `{:#}`, each cause of `err` after `": "`, as `anyhow` prints a chain.
fn causes(err: &dyn Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if f.alternate() {
        let mut cause = err.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
    }
    Ok(())
}
