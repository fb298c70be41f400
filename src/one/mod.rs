//! OpenNebula compute: endpoints and sessions, VM documents, templates, states, the XML-RPC client.

pub mod client;
pub mod endpoint;
pub mod plain;
pub mod pools;
pub mod states;
pub mod template;
pub mod vm;
pub mod xmltree;
