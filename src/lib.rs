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
pub mod fleet;
pub mod http;
pub mod localcloud;
pub mod marketplace;
pub mod one;
pub mod pdisk;
pub mod pieces;
pub mod runtime;
pub mod xmlrpc;

#[cfg(feature = "python")]
mod python;

/// Helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    /// This thread's CPU time (Linux `schedstat`, so a busy machine does not skew it), else
    /// wall-clock time since the first call.
    pub fn cpu_now() -> std::time::Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .map(std::time::Duration::from_nanos)
            .unwrap_or_else(|| START.get_or_init(std::time::Instant::now).elapsed())
    }
}
