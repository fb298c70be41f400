//! The local StratusLab cloud: an emulator of a site's three services (compute behind one-proxy,
//! pdisk, Marketplace) served by one HTTP server.
//!
//! The service modules are framework-free: each takes a parsed request and its in-memory state and
//! returns a [`Reply`]; `server` does HTTP, authentication, routing by site and fault injection.

pub mod cloud;
pub mod compute;
pub mod faults;
pub mod marketplace;
pub mod pdisk;
pub mod server;
pub mod tls;
pub mod vmxml;

use bytes::Bytes;

/// A service's answer, before the HTTP layer sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    /// Shared, so a cached reply is sent without copying it.
    pub body: Bytes,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            body: body.into(),
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// What pdisk needs to know about a VM of its site (hot attach checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmView {
    pub id: i64,
    pub owner: String,
    /// Hypervisor host from the current HISTORY record, once deployed.
    pub host: Option<String>,
    /// STATE = ACTIVE and LCM_STATE = RUNNING.
    pub running: bool,
}
