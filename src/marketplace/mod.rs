//! StratusLab Marketplace: identifiers, the namespace-aware RDF/XML reader, the writer used by the
//! local cloud, and the metadata client.
//!
//! - [`identifier`]: SHA-1 ↔ 27-character identifier (spec §5.7);
//! - [`rdf`]: streaming reader of listings and single entries into [`ImageEntry`] records;
//! - [`writer`]: single entries and listings in the real format (for the local cloud);
//! - [`client`]: `GET <endpoint>/metadata…` over [`crate::http`].

pub mod client;
pub mod identifier;
pub mod rdf;
pub mod writer;

pub use client::{sanitize_endpoint, ListQuery, MarketplaceClient, StatusFilter};
pub use identifier::{identifier_to_sha1_hex, is_valid_identifier, sha1_hex_to_identifier};
pub use rdf::{listing_pieces, parse_date, parse_entry, parse_listing, Endorser, ImageEntry};
pub use writer::{write_entry, write_listing};

use crate::error::{Classify, Kind};
use crate::http::TransportError;

/// Everything that can go wrong talking to a Marketplace or reading its documents.
#[derive(Debug, thiserror::Error)]
pub enum MarketplaceError {
    /// No HTTP reply (connection, TLS, timeout…).
    #[error(transparent)]
    Transport {
        #[from]
        source: TransportError,
    },
    /// The Marketplace answered with an error status.
    #[error("Marketplace answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// No valid entry with this identifier (HTTP 404 or an empty answer).
    #[error("no valid Marketplace entry with identifier '{identifier}'")]
    NotFound { identifier: String },
    /// The reply is not a usable Marketplace document (not XML, wrong root…).
    #[error("malformed Marketplace document: {detail}")]
    Malformed { detail: String },
    /// One entry of a document is unusable; the others are not affected.
    #[error("invalid Marketplace entry: {reason}")]
    Entry { reason: String },
    /// A string given as an identifier or SHA-1 is not one.
    #[error("'{value}' is not a valid Marketplace identifier or SHA-1: {reason}")]
    BadIdentifier { value: String, reason: String },
    /// The configured Marketplace endpoint is not a usable URL.
    #[error("invalid Marketplace endpoint '{endpoint}': {detail}")]
    BadEndpoint { endpoint: String, detail: String },
}

impl Classify for MarketplaceError {
    fn kind(&self) -> Kind {
        match self {
            MarketplaceError::Transport { source } => source.kind(),
            MarketplaceError::Http { .. } | MarketplaceError::NotFound { .. } => Kind::Provider,
            MarketplaceError::Malformed { .. } | MarketplaceError::Entry { .. } => Kind::Malformed,
            MarketplaceError::BadIdentifier { .. } => Kind::InvalidArgument,
            MarketplaceError::BadEndpoint { .. } => Kind::Config,
        }
    }
    fn http_status(&self) -> Option<u16> {
        match self {
            MarketplaceError::Transport { source } => source.http_status(),
            MarketplaceError::Http { status, .. } => Some(*status),
            MarketplaceError::NotFound { .. } => Some(404),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let e = MarketplaceError::Http {
            status: 503,
            message: "down".into(),
        };
        assert_eq!((e.kind(), e.http_status()), (Kind::Provider, Some(503)));
        let e = MarketplaceError::NotFound {
            identifier: "x".into(),
        };
        assert_eq!((e.kind(), e.http_status()), (Kind::Provider, Some(404)));
        let e = MarketplaceError::from(TransportError::Timeout { seconds: 1.0 });
        assert_eq!((e.kind(), e.http_status()), (Kind::Timeout, None));
        let e = MarketplaceError::Entry { reason: "r".into() };
        assert_eq!(e.kind(), Kind::Malformed);
        assert_eq!(e.to_string(), "invalid Marketplace entry: r");
        let e = MarketplaceError::BadIdentifier {
            value: "v".into(),
            reason: "r".into(),
        };
        assert_eq!(e.kind(), Kind::InvalidArgument);
        let e = MarketplaceError::BadEndpoint {
            endpoint: "e".into(),
            detail: "d".into(),
        };
        assert_eq!(e.kind(), Kind::Config);
    }
}
