//! Rust core of `stratuslab-libcloud`: everything that touches the wire or the configuration file.
//!
//! Layers (each with one `thiserror` enum, classified by [`error::Classify`]):
//! - [`config`]: `stratuslab-user.cfg` → sites, instance types, credentials;
//! - [`http`]: the reqwest client (TLS, timeouts, retries, logging);
//! - [`xmlrpc`]: the XML-RPC codec shared by the compute client and the local cloud;
//! - [`one`]: OpenNebula compute (endpoints, VM documents, templates, states, client);
//! - [`marketplace`]: Marketplace RDF/XML metadata (reader, writer, identifiers, client);
//! - [`pdisk`]: the persistent-disk REST client;
//! - [`localcloud`]: the emulator of a StratusLab site's three services;
//! - `python` (feature `python`): the only pyo3 code.

pub mod config;
pub mod driver;
pub mod error;
pub mod http;
pub mod localcloud;
pub mod marketplace;
pub mod one;
pub mod pdisk;
pub mod runtime;
pub mod xmlrpc;

#[cfg(feature = "python")]
mod python;
