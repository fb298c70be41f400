//! The records a VM document is read into, and the reader's error.

use crate::error::{Classify, Kind};

/// Why a VM document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VmXmlError {
    /// Not well-formed XML (or not UTF-8).
    #[error("malformed VM XML at byte {position}: {message}")]
    Xml { position: u64, message: String },
    /// The root element is not the expected one.
    #[error("expected root element <{expected}>, found <{found}>")]
    Root {
        expected: &'static str,
        found: String,
    },
    /// A required element is absent.
    #[error("VM document without <{element}>")]
    Missing { element: &'static str },
    /// An element that must hold a number does not.
    #[error("<{element}> is not a number: {value:?}")]
    Number {
        element: &'static str,
        value: String,
    },
    /// The document ended inside an element (or had no root).
    #[error("VM XML ends before the document is complete")]
    Truncated,
}

impl Classify for VmXmlError {
    fn kind(&self) -> Kind {
        Kind::Malformed
    }
}

/// One VM as `one.vm.info` / `one.vmpool.info` describe it (the fields a driver needs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmRecord {
    pub id: i64,
    pub uid: i64,
    pub gid: i64,
    pub uname: String,
    pub gname: String,
    pub name: String,
    pub state: i32,
    pub lcm_state: i32,
    pub stime: i64,
    pub etime: i64,
    pub deploy_id: String,
    pub template: VmTemplate,
    /// In document order (ascending `SEQ` from oned).
    pub history: Vec<History>,
}

/// The VM's `TEMPLATE` (what was allocated, as the daemon completed it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmTemplate {
    /// Requested CPU share (`TEMPLATE/CPU`).
    pub cpu: Option<f64>,
    pub vcpu: Option<u32>,
    /// Requested memory (`TEMPLATE/MEMORY`, MiB).
    pub memory_mib: Option<u64>,
    pub name: Option<String>,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    /// `CONTEXT` entries in document order (keys as written, upper case from oned).
    pub context: Vec<(String, String)>,
    /// `TEMPLATE/ERROR/MESSAGE`, set by oned when something failed.
    pub error_message: Option<String>,
    pub inbound_ports: Option<String>,
    /// The driver's client token (`CLIENT_TOKEN`): in `TEMPLATE` on OpenNebula 3.x, in
    /// `USER_TEMPLATE` from 4.0 on (where the short pool body of 5.8+ leaves it out).
    pub client_token: Option<String>,
    /// `TEMPLATE_ID`: the VM template it was instantiated from (`one.template.instantiate`).
    pub template_id: Option<i64>,
}

/// One `TEMPLATE/DISK`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disk {
    pub disk_id: Option<u32>,
    pub source: Option<String>,
    pub image: Option<String>,
    /// `IMAGE_ID`: the image-pool image the disk is made from.
    pub image_id: Option<i64>,
    pub target: Option<String>,
    /// `TYPE` as written (`swap`, `fs`, `block`, `FILE`, ...).
    pub disk_type: Option<String>,
    pub size_mib: Option<u64>,
    pub driver: Option<String>,
    pub format: Option<String>,
    /// `READONLY` yes/no (any case); `None` if absent or neither.
    pub readonly: Option<bool>,
}

/// One `TEMPLATE/NIC`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Nic {
    pub network: Option<String>,
    pub ip: Option<String>,
    pub mac: Option<String>,
    pub network_id: Option<i64>,
    /// `IP6_GLOBAL`, else `IP6_ULA`, else `IP6_SITE` (link-local `IP6_LINK` is not kept).
    pub ip6: Option<String>,
}

/// One `HISTORY_RECORDS/HISTORY` (a placement of the VM on a host).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub seq: i64,
    pub hostname: String,
    pub stime: i64,
    pub etime: i64,
}

impl VmRecord {
    /// Hostname of the current placement: the HISTORY with the highest SEQ (see module docs).
    pub fn current_host(&self) -> Option<&str> {
        self.history
            .iter()
            .enumerate()
            .max_by_key(|(i, h)| (h.seq, *i))
            .map(|(_, h)| h.hostname.as_str())
            .filter(|h| !h.is_empty())
    }
}
