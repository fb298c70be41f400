//! XML-RPC: values, the quick-xml codec, faults. One codec, shared by the compute client
//! (`one::client`) and the local cloud (`localcloud::server`).

mod codec;
mod value;

pub use codec::{
    decode_call, decode_response, decode_response_raw, encode_call, encode_fault, encode_response,
    escape_into, unescape, RawItem, RawResponse,
};
pub use value::Value;

use crate::error::{Classify, Kind};

/// Fault codes the OpenNebula daemon (xmlrpc-c) uses.
pub const FAULT_PARAMETERS: i32 = -501;
pub const FAULT_NO_SUCH_METHOD: i32 = -506;

/// XML-RPC layer failures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum XmlRpcError {
    /// Not an XML-RPC document we can read.
    #[error("malformed XML-RPC: {detail}")]
    Malformed { detail: String },
    /// The server answered with a fault.
    #[error("XML-RPC fault {code}: {message}")]
    Fault { code: i64, message: String },
}

impl Classify for XmlRpcError {
    fn kind(&self) -> Kind {
        match self {
            XmlRpcError::Malformed { .. } => Kind::Malformed,
            XmlRpcError::Fault { .. } => Kind::Provider,
        }
    }
    fn service_code(&self) -> Option<i64> {
        match self {
            XmlRpcError::Fault { code, .. } => Some(*code),
            XmlRpcError::Malformed { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests;
