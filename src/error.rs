//! The crate's top-level error and the classification every layer shares.
//!
//! Each layer owns one `thiserror` enum (`config::ConfigError`, `http::TransportError`,
//! `xmlrpc::XmlRpcError`, `one::OneError`, `marketplace::MarketplaceError`, `pdisk::PdiskError`,
//! `localcloud::LocalCloudError`). Each implements [`Classify`], which is all that
//! `src/python/errors.rs` (the single place that maps errors to Python) needs to pick an exception
//! class. No pyo3 here.

use std::fmt;

/// What went wrong, in the terms a Libcloud user catches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Wrong or missing credentials (HTTP 401, OpenNebula AUTHENTICATION 256) → `InvalidCredsError`.
    InvalidCreds,
    /// The server answered something we cannot parse → `MalformedResponseError`.
    Malformed,
    /// The service refused the request (HTTP 4xx/5xx, OpenNebula error tuple, XML-RPC fault)
    /// → `ProviderError` carrying the HTTP status and the service's own code.
    Provider,
    /// No answer within the timeout → `LibcloudError` subclass.
    Timeout,
    /// Could not connect (refused, DNS, TLS handshake) → `LibcloudError` subclass.
    Unreachable,
    /// The caller's argument is wrong → `ValueError`.
    InvalidArgument,
    /// The configuration file or settings are wrong → `ValueError` subclass.
    Config,
    /// The site cannot do this → `LibcloudError` subclass.
    Unsupported,
    /// The cloud's current state forbids the request (attach to a PENDING node, detach an
    /// unattached volume, act on a destroyed node) → a `ProviderError` subclass.
    State,
    /// A bug on our side (including a caught panic) → `LibcloudError` subclass.
    Internal,
}

/// Implemented by every layer's error enum.
pub trait Classify {
    fn kind(&self) -> Kind;
    /// HTTP status of the reply, when there was one.
    fn http_status(&self) -> Option<u16> {
        None
    }
    /// The service's own error code (OpenNebula's 256/512/1024/2048/8192, an XML-RPC fault code,
    /// pdisk's JSON `code`), when there was one.
    fn service_code(&self) -> Option<i64> {
        None
    }
}

/// Names the site, endpoint and operation of a failed call (never a credential: endpoints are
/// stored without userinfo).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub site: String,
    pub endpoint: String,
    pub operation: String,
}

impl Context {
    pub fn new(site: &str, endpoint: &str, operation: &str) -> Self {
        Context {
            site: site.to_owned(),
            endpoint: endpoint.to_owned(),
            operation: operation.to_owned(),
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "site '{}', {} at {}",
            self.site, self.operation, self.endpoint
        )
    }
}

/// A failure somewhere in the stack, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A remote call failed; `source` says how.
    #[error("{context}: {source}")]
    Remote {
        context: Context,
        #[source]
        source: RemoteSource,
    },
    /// Configuration problem (file, section, key, line in the message).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A bad argument, detected before anything was sent.
    #[error("{message}")]
    InvalidArgument { message: String },
    /// The site does not support the operation.
    #[error("{context}: {message}")]
    Unsupported { context: Context, message: String },
    /// The remote state forbids the operation (found by reading it, before or instead of sending
    /// the action).
    #[error("{context}: {message}")]
    State { context: Context, message: String },
    /// A bug (or a caught panic).
    #[error("internal error: {message}")]
    Internal { message: String },
}

/// A layer error that can travel inside [`Error::Remote`].
pub trait RemoteFailure: std::error::Error + Classify + Send + Sync + 'static {}
impl<T: std::error::Error + Classify + Send + Sync + 'static> RemoteFailure for T {}

/// The layer error inside [`Error::Remote`].
#[derive(Debug)]
pub struct RemoteSource(pub Box<dyn RemoteFailure>);

impl fmt::Display for RemoteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for RemoteSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl Error {
    pub fn remote(context: Context, source: impl RemoteFailure) -> Self {
        Error::Remote {
            context,
            source: RemoteSource(Box::new(source)),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            message: message.into(),
        }
    }

    pub fn unsupported(context: Context, message: impl Into<String>) -> Self {
        Error::Unsupported {
            context,
            message: message.into(),
        }
    }

    /// A refusal caused by the cloud's current state.
    pub fn state(context: Context, message: impl Into<String>) -> Self {
        Error::State {
            context,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    /// The context of a remote failure.
    pub fn context(&self) -> Option<&Context> {
        match self {
            Error::Remote { context, .. }
            | Error::Unsupported { context, .. }
            | Error::State { context, .. } => Some(context),
            _ => None,
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Remote { source, .. } => source.0.kind(),
            Error::Config(_) => Kind::Config,
            Error::InvalidArgument { .. } => Kind::InvalidArgument,
            Error::Unsupported { .. } => Kind::Unsupported,
            Error::State { .. } => Kind::State,
            Error::Internal { .. } => Kind::Internal,
        }
    }
    fn http_status(&self) -> Option<u16> {
        match self {
            Error::Remote { source, .. } => source.0.http_status(),
            _ => None,
        }
    }
    fn service_code(&self) -> Option<i64> {
        match self {
            Error::Remote { source, .. } => source.0.service_code(),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_found_by_the_driver_name_where_they_happened() {
        let here = Context::new("lal", "https://lal/xmlrpc", "reboot_node (one.vm.action)");
        for (error, kind) in [
            (Error::unsupported(here.clone(), "no"), Kind::Unsupported),
            (Error::state(here.clone(), "no"), Kind::State),
        ] {
            assert_eq!(error.context(), Some(&here));
            assert_eq!(error.kind(), kind);
            assert_eq!(
                error.to_string(),
                "site 'lal', reboot_node (one.vm.action) at https://lal/xmlrpc: no"
            );
        }
    }
}
