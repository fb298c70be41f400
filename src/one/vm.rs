//! Reader of OpenNebula VM documents: `one.vm.info` (root `VM`) and `one.vmpool.info` (root
//! `VM_POOL`), OpenNebula 3.2 (StratusLab) and 3.8.
//!
//! One streaming pass, no DOM: a small purpose-built scanner (memchr searches; elements, text,
//! CDATA, comments, processing instructions; DOCTYPE refused; end tags must match), a stack of
//! "where am I" tags, one reused text buffer, and `String`s only for the fields kept. (On a 37 MB
//! pool, quick-xml's bare event loop cost about as much CPU as this whole parse.) Text is trimmed (the StratusLab
//! sample is pretty-printed around CDATA) but CDATA content itself is kept verbatim; unknown
//! elements are skipped. Any input gives a record or a [`VmXmlError`], never a panic.
//!
//! Current host (spec §9 q7): oned keeps history records in a vector indexed by `SEQ` and writes
//! them in that order; `one.vm.info` writes all of them, `one.vmpool.info` only the current one
//! (3.2 `VirtualMachine::to_xml_extended(xml, bool extended)`, 3.8.5 `to_xml_extended(xml,
//! n_history)`; the 3.8.5 captures `vm-info-done.xml` (SEQ 0..3) and `vmpool-info-all.xml` (only
//! SEQ 3) show it). So the current record is the one with the highest `SEQ`, which is the last
//! one: the StratusLab client's "first HISTORY" is wrong after a migration or stop/resume.

use std::borrow::Cow;

use crate::pieces::{Pieces, Position};

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

/// Parses a `one.vm.info` document (root `VM`).
pub fn parse_vm(xml: &[u8]) -> Result<VmRecord, VmXmlError> {
    let mut vms = Vec::with_capacity(1);
    parse(utf8(xml)?, Root::Vm, Part::Whole, &mut vms)?;
    vms.pop().ok_or(VmXmlError::Truncated)
}

/// Parses a `one.vmpool.info` document (root `VM_POOL`, zero or more `VM`). A large pool is
/// cut between two top-level `VM`s and the pieces are read on several threads; if any piece
/// fails (a cut that fell inside CDATA, say), the whole document is read again in one piece, so
/// the result and the errors are those of a serial read.
pub fn parse_pool(xml: &[u8]) -> Result<Vec<VmRecord>, VmXmlError> {
    let doc = utf8(xml)?;
    if let Some(vms) = parse_pool_parallel(doc) {
        return Ok(vms);
    }
    let mut vms = Vec::new();
    parse(doc, Root::Pool, Part::Whole, &mut vms)?;
    Ok(vms)
}

/// Below this many bytes per piece a pool is not cut.
const PIECE_MIN_BYTES: usize = 1 << 20;
/// At most this many pieces.
const MAX_PIECES: usize = 8;

fn utf8(xml: &[u8]) -> Result<&str, VmXmlError> {
    let text = std::str::from_utf8(xml).map_err(|e| VmXmlError::Xml {
        position: e.valid_up_to() as u64,
        message: "not UTF-8".into(),
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Which piece of a document a parse reads.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    /// The whole document.
    Whole,
    /// From the start to a cut: must end with only the root element open.
    Head,
    /// Between two cuts, inside the root: complete elements only.
    Middle,
    /// From a cut inside the root to the end of the document.
    Tail,
}

/// The pool read in pieces on several threads, or `None` (too small, one CPU, no cut found,
/// or a piece that does not read on its own).
fn parse_pool_parallel(doc: &str) -> Option<Vec<VmRecord>> {
    read_in_pieces(doc, "</VM><VM>", "</VM>".len(), |piece, part, out| {
        parse(piece, Root::Pool, part, out)
    })
}

/// Reads a pool document in pieces cut just after `cut_len` bytes of each `marker` found near
/// 1/n of `doc`, each piece on its own thread; `None` unless every piece reads.
fn read_in_pieces(
    doc: &str,
    marker: &str,
    cut_len: usize,
    read: impl Fn(&str, Part, &mut Vec<VmRecord>) -> Result<(), VmXmlError> + Sync,
) -> Option<Vec<VmRecord>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pieces = threads.min(MAX_PIECES).min(doc.len() / PIECE_MIN_BYTES);
    if pieces < 2 {
        return None;
    }
    let mut cuts = marker_cuts(
        doc.as_bytes(),
        0..doc.len(),
        pieces,
        marker.as_bytes(),
        cut_len,
    );
    cuts.dedup();
    if cuts.len() < 3 {
        return None;
    }
    let last = cuts.len() - 2;
    let read = &read;
    let results: Vec<Option<Vec<VmRecord>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = cuts
            .windows(2)
            .enumerate()
            .skip(1)
            .map(|(i, w)| {
                let piece = doc.get(w[0]..w[1]).unwrap_or("");
                let part = if i == last { Part::Tail } else { Part::Middle };
                scope.spawn(move || {
                    let mut out = Vec::new();
                    read(piece, part, &mut out).ok().map(|()| out)
                })
            })
            .collect();
        let mut head = Vec::new();
        let first = read(doc.get(..cuts[1]).unwrap_or(""), Part::Head, &mut head)
            .ok()
            .map(|()| head);
        std::iter::once(first)
            .chain(handles.into_iter().map(|h| h.join().ok().flatten()))
            .collect()
    });
    let mut all = Vec::new();
    for piece in results {
        all.extend(piece?);
    }
    Some(all)
}

/// Parses a `one.vmpool.info` document as it lies, still escaped, in the body of the reply's
/// XML-RPC `<string>` ([`crate::xmlrpc::RawItem::Escaped`]): the result and the errors are
/// those of [`parse_pool`] on the unescaped text (a string that does not unescape is an
/// [`VmXmlError::Xml`] at byte 0), without making that copy (tens of MB) in the common case.
/// Large documents are read in pieces on several threads.
pub fn parse_pool_escaped(raw: &str) -> Result<Vec<VmRecord>, VmXmlError> {
    let read = |piece: &str, part: Part, out: &mut Vec<VmRecord>| {
        parse_tokens(EscapedScanner { s: piece, pos: 0 }, Root::Pool, part, out)
    };
    let fast = read_in_pieces(raw, POOL_CUT_MARKER, POOL_CUT_OFFSET, read).or_else(|| {
        let mut out = Vec::new();
        read(raw, Part::Whole, &mut out).ok().map(|()| out)
    });
    if let Some(vms) = fast {
        return Ok(vms);
    }
    let doc = crate::xmlrpc::unescape(raw).map_err(|e| VmXmlError::Xml {
        position: 0,
        message: e.to_string(),
    })?;
    parse_pool(doc.as_bytes())
}

/// Pieces of about this many bytes when a pool is read as a stream ([`pool_pieces`]).
const STREAM_PIECE_BYTES: usize = 1 << 20;
/// Where an escaped pool is cut into pieces: between two top-level `VM`s ...
const POOL_CUT_MARKER: &str = "&lt;/VM&gt;&lt;VM&gt;";
/// ... just after the first one's end tag.
const POOL_CUT_OFFSET: usize = "&lt;/VM&gt;".len();

/// Offsets into `text` cutting `range` into about `pieces` pieces, each cut just after
/// `cut_len` bytes of the first `marker` found from near k/n of the range (fewer pieces when
/// none is found): the range's start, the cuts, its end.
fn marker_cuts(
    text: &[u8],
    range: std::ops::Range<usize>,
    pieces: usize,
    marker: &[u8],
    cut_len: usize,
) -> Vec<usize> {
    let len = range.end - range.start;
    let mut cuts = vec![range.start];
    for k in 1..pieces {
        let from = (range.start + len * k / pieces).max(cuts.last().copied().unwrap_or(0));
        let Some(at) = text
            .get(from..range.end)
            .and_then(|rest| memchr::memmem::find(rest, marker))
        else {
            break;
        };
        cuts.push(from + at + cut_len);
    }
    cuts.push(range.end);
    cuts
}

/// A pool, as it lies (still escaped) in a reply, read in pieces of about
/// [`STREAM_PIECE_BYTES`] cut between top-level `VM`s ([`crate::pieces`]), each with the fast
/// reading of [`parse_pool_escaped`]. When a piece does not read, the caller reads the whole
/// document with [`parse_pool_escaped`], whose result and error are the reference.
pub type PoolPieces = Pieces<VmRecord>;

/// The [`PoolPieces`] of the pool document at `doc` in `body` (the escaped text of the reply's
/// `<string>`).
pub fn pool_pieces(
    body: bytes::Bytes,
    doc: std::ops::Range<usize>,
    deliver: crate::pieces::Deliver<VmRecord>,
) -> PoolPieces {
    let pieces = (doc.end - doc.start) / STREAM_PIECE_BYTES;
    let cuts = marker_cuts(
        &body,
        doc,
        pieces,
        POOL_CUT_MARKER.as_bytes(),
        POOL_CUT_OFFSET,
    );
    Pieces::new(
        body,
        cuts,
        Box::new(|piece, position| {
            let part = match position {
                Position::Only => Part::Whole,
                Position::First => Part::Head,
                Position::Middle => Part::Middle,
                Position::Last => Part::Tail,
            };
            let mut out = Vec::new();
            let scanner = EscapedScanner { s: piece, pos: 0 };
            parse_tokens(scanner, Root::Pool, part, &mut out).ok()?;
            Some(out)
        }),
        deliver,
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Root {
    Vm,
    Pool,
}

/// Where the reader is. Leaf variants collect text; `Skip` is any element we ignore.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Tag {
    Pool,
    Vm,
    VmField(VmField),
    Template,
    TplField(TplField),
    Disk,
    DiskField(DiskField),
    Nic,
    NicField(NicField),
    Context,
    ContextKey,
    Error,
    ErrorMessage,
    HistoryRecords,
    History,
    HistField(HistField),
    /// `VM/USER_TEMPLATE` (OpenNebula ≥ 4.0): only the client token is read from it.
    UserTemplate,
    Skip,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum VmField {
    Id,
    Uid,
    Gid,
    Uname,
    Gname,
    Name,
    State,
    LcmState,
    Stime,
    Etime,
    DeployId,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum TplField {
    Cpu,
    Vcpu,
    Memory,
    Name,
    InboundPorts,
    ClientToken,
    TemplateId,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum DiskField {
    DiskId,
    Source,
    Image,
    ImageId,
    Target,
    Type,
    Size,
    Driver,
    Format,
    Readonly,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum NicField {
    Network,
    Ip,
    Mac,
    NetworkId,
    Ip6Global,
    Ip6Ula,
    Ip6Site,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum HistField {
    Seq,
    Hostname,
    Stime,
    Etime,
}

impl Tag {
    /// The tag of a child element named `name` under `self`.
    fn child(self, name: &str) -> Tag {
        match self {
            Tag::Pool => match name {
                "VM" => Tag::Vm,
                _ => Tag::Skip,
            },
            Tag::Vm => match name {
                "ID" => Tag::VmField(VmField::Id),
                "UID" => Tag::VmField(VmField::Uid),
                "GID" => Tag::VmField(VmField::Gid),
                "UNAME" => Tag::VmField(VmField::Uname),
                "GNAME" => Tag::VmField(VmField::Gname),
                "NAME" => Tag::VmField(VmField::Name),
                "STATE" => Tag::VmField(VmField::State),
                "LCM_STATE" => Tag::VmField(VmField::LcmState),
                "STIME" => Tag::VmField(VmField::Stime),
                "ETIME" => Tag::VmField(VmField::Etime),
                "DEPLOY_ID" => Tag::VmField(VmField::DeployId),
                "TEMPLATE" => Tag::Template,
                "HISTORY_RECORDS" => Tag::HistoryRecords,
                "USER_TEMPLATE" => Tag::UserTemplate,
                _ => Tag::Skip,
            },
            Tag::UserTemplate => match name {
                "CLIENT_TOKEN" => Tag::TplField(TplField::ClientToken),
                _ => Tag::Skip,
            },
            Tag::Template => match name {
                "CPU" => Tag::TplField(TplField::Cpu),
                "VCPU" => Tag::TplField(TplField::Vcpu),
                "MEMORY" => Tag::TplField(TplField::Memory),
                "NAME" => Tag::TplField(TplField::Name),
                "INBOUND_PORTS" => Tag::TplField(TplField::InboundPorts),
                "CLIENT_TOKEN" => Tag::TplField(TplField::ClientToken),
                "TEMPLATE_ID" => Tag::TplField(TplField::TemplateId),
                "DISK" => Tag::Disk,
                "NIC" => Tag::Nic,
                "CONTEXT" => Tag::Context,
                "ERROR" => Tag::Error,
                _ => Tag::Skip,
            },
            Tag::Disk => match name {
                "DISK_ID" => Tag::DiskField(DiskField::DiskId),
                "SOURCE" => Tag::DiskField(DiskField::Source),
                "IMAGE" => Tag::DiskField(DiskField::Image),
                "IMAGE_ID" => Tag::DiskField(DiskField::ImageId),
                "TARGET" => Tag::DiskField(DiskField::Target),
                "TYPE" => Tag::DiskField(DiskField::Type),
                "SIZE" => Tag::DiskField(DiskField::Size),
                "DRIVER" => Tag::DiskField(DiskField::Driver),
                "FORMAT" => Tag::DiskField(DiskField::Format),
                "READONLY" => Tag::DiskField(DiskField::Readonly),
                _ => Tag::Skip,
            },
            Tag::Nic => match name {
                "NETWORK" => Tag::NicField(NicField::Network),
                "IP" => Tag::NicField(NicField::Ip),
                "MAC" => Tag::NicField(NicField::Mac),
                "NETWORK_ID" => Tag::NicField(NicField::NetworkId),
                "IP6_GLOBAL" => Tag::NicField(NicField::Ip6Global),
                "IP6_ULA" => Tag::NicField(NicField::Ip6Ula),
                "IP6_SITE" => Tag::NicField(NicField::Ip6Site),
                _ => Tag::Skip,
            },
            Tag::Context => Tag::ContextKey,
            Tag::Error => match name {
                "MESSAGE" => Tag::ErrorMessage,
                _ => Tag::Skip,
            },
            Tag::HistoryRecords => match name {
                "HISTORY" => Tag::History,
                _ => Tag::Skip,
            },
            Tag::History => match name {
                "SEQ" => Tag::HistField(HistField::Seq),
                "HOSTNAME" => Tag::HistField(HistField::Hostname),
                "STIME" => Tag::HistField(HistField::Stime),
                "ETIME" => Tag::HistField(HistField::Etime),
                _ => Tag::Skip,
            },
            _ => Tag::Skip,
        }
    }

    /// Leaf elements whose text we keep.
    fn collects(self) -> bool {
        matches!(
            self,
            Tag::VmField(_)
                | Tag::TplField(_)
                | Tag::DiskField(_)
                | Tag::NicField(_)
                | Tag::ContextKey
                | Tag::ErrorMessage
                | Tag::HistField(_)
        )
    }
}

/// Text of the current leaf: raw pieces plus where CDATA content starts and ends, so that the
/// whitespace around CDATA (pretty-printing) is trimmed but CDATA content is kept verbatim.
#[derive(Default)]
struct Text {
    buf: String,
    cdata: Option<(usize, usize)>,
}

impl Text {
    fn clear(&mut self) {
        self.buf.clear();
        self.cdata = None;
    }

    fn push_cdata(&mut self, s: &str) {
        let start = self.buf.len();
        push_normalized(&mut self.buf, s);
        let end = self.buf.len();
        self.cdata = Some(match self.cdata {
            Some((first, _)) => (first, end),
            None => (start, end),
        });
    }

    /// The value: trimmed, except inside the CDATA span.
    fn value(&self) -> &str {
        match self.cdata {
            None => self.buf.trim(),
            Some((start, end)) => {
                let head = self.buf.get(..start).unwrap_or("");
                let tail = self.buf.get(end..).unwrap_or("");
                let from = head.len() - head.trim_start().len();
                let to = end + tail.trim_end().len();
                self.buf.get(from..to).unwrap_or("")
            }
        }
    }
}

fn int<T: std::str::FromStr>(element: &'static str, s: &str) -> Result<T, VmXmlError> {
    s.parse().map_err(|_| VmXmlError::Number {
        element,
        value: s.to_owned(),
    })
}

fn opt_string(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn yes_no(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// The VM being read and which required elements were seen.
#[derive(Default)]
struct Building {
    vm: VmRecord,
    seen_id: bool,
    seen_state: bool,
    seen_lcm: bool,
    /// IPv6 candidates by priority (global, ULA, site).
    ip6: [Option<String>; 3],
}

impl Building {
    fn finish(self) -> Result<VmRecord, VmXmlError> {
        if !self.seen_id {
            return Err(VmXmlError::Missing { element: "ID" });
        }
        if !self.seen_state {
            return Err(VmXmlError::Missing { element: "STATE" });
        }
        if !self.seen_lcm {
            return Err(VmXmlError::Missing {
                element: "LCM_STATE",
            });
        }
        Ok(self.vm)
    }

    fn set_vm(&mut self, f: VmField, v: &str) -> Result<(), VmXmlError> {
        let vm = &mut self.vm;
        match f {
            VmField::Id => {
                vm.id = int("ID", v)?;
                self.seen_id = true;
            }
            VmField::Uid => vm.uid = int("UID", v)?,
            VmField::Gid => vm.gid = int("GID", v)?,
            VmField::Uname => v.clone_into(&mut vm.uname),
            VmField::Gname => v.clone_into(&mut vm.gname),
            VmField::Name => v.clone_into(&mut vm.name),
            VmField::State => {
                vm.state = int("STATE", v)?;
                self.seen_state = true;
            }
            VmField::LcmState => {
                vm.lcm_state = int("LCM_STATE", v)?;
                self.seen_lcm = true;
            }
            VmField::Stime => vm.stime = int("STIME", v)?,
            VmField::Etime => vm.etime = int("ETIME", v)?,
            VmField::DeployId => v.clone_into(&mut vm.deploy_id),
        }
        Ok(())
    }

    fn set_template(&mut self, f: TplField, v: &str) {
        // Template values come from the user through oned; an odd one is dropped, not fatal.
        let t = &mut self.vm.template;
        match f {
            TplField::Cpu => t.cpu = v.parse().ok(),
            TplField::Vcpu => t.vcpu = v.parse().ok(),
            TplField::Memory => t.memory_mib = v.parse().ok(),
            TplField::Name => t.name = opt_string(v),
            TplField::InboundPorts => t.inbound_ports = opt_string(v),
            TplField::ClientToken => t.client_token = opt_string(v),
            TplField::TemplateId => t.template_id = v.parse().ok(),
        }
    }

    fn set_disk(&mut self, f: DiskField, v: &str) {
        let Some(d) = self.vm.template.disks.last_mut() else {
            return;
        };
        match f {
            DiskField::DiskId => d.disk_id = v.parse().ok(),
            DiskField::Source => d.source = opt_string(v),
            DiskField::Image => d.image = opt_string(v),
            DiskField::ImageId => d.image_id = v.parse().ok(),
            DiskField::Target => d.target = opt_string(v),
            DiskField::Type => d.disk_type = opt_string(v),
            DiskField::Size => d.size_mib = v.parse().ok(),
            DiskField::Driver => d.driver = opt_string(v),
            DiskField::Format => d.format = opt_string(v),
            DiskField::Readonly => d.readonly = yes_no(v),
        }
    }

    fn set_nic(&mut self, f: NicField, v: &str) {
        let Some(n) = self.vm.template.nics.last_mut() else {
            return;
        };
        match f {
            NicField::Network => n.network = opt_string(v),
            NicField::Ip => n.ip = opt_string(v),
            NicField::Mac => n.mac = opt_string(v),
            NicField::NetworkId => n.network_id = v.parse().ok(),
            NicField::Ip6Global => self.ip6[0] = opt_string(v),
            NicField::Ip6Ula => self.ip6[1] = opt_string(v),
            NicField::Ip6Site => self.ip6[2] = opt_string(v),
        }
    }

    fn end_nic(&mut self) {
        let ip6 = self.ip6.iter_mut().find_map(Option::take);
        self.ip6 = Default::default();
        if let Some(n) = self.vm.template.nics.last_mut() {
            n.ip6 = ip6;
        }
    }

    fn set_history(&mut self, f: HistField, v: &str) -> Result<(), VmXmlError> {
        let Some(h) = self.vm.history.last_mut() else {
            return Ok(());
        };
        match f {
            HistField::Seq => h.seq = int("SEQ", v)?,
            HistField::Hostname => v.clone_into(&mut h.hostname),
            HistField::Stime => h.stime = int("HISTORY/STIME", v)?,
            HistField::Etime => h.etime = int("HISTORY/ETIME", v)?,
        }
        Ok(())
    }
}

struct Parser {
    root: Root,
    stack: Vec<Tag>,
    text: Text,
    /// Name of the CONTEXT entry being read.
    context_key: String,
    current: Option<Building>,
    seen_root: bool,
}

impl Parser {
    fn start(&mut self, name: &str) -> Result<Tag, VmXmlError> {
        let tag = match self.stack.last() {
            // A listing's records leave CONTEXT out (user data can be most of a VM's
            // document, and no listing uses it); `one.vm.info` reads it.
            Some(Tag::Template) if self.root == Root::Pool && name == "CONTEXT" => Tag::Skip,
            Some(parent) => parent.child(name),
            None => {
                let (expected, tag): (&'static str, Tag) = match self.root {
                    Root::Vm => ("VM", Tag::Vm),
                    Root::Pool => ("VM_POOL", Tag::Pool),
                };
                if self.seen_root || name != expected {
                    return Err(VmXmlError::Root {
                        expected,
                        found: name.to_owned(),
                    });
                }
                self.seen_root = true;
                tag
            }
        };
        match tag {
            Tag::Vm => self.current = Some(Building::default()),
            Tag::Disk => self.vm_mut().template.disks.push(Disk::default()),
            Tag::Nic => self.vm_mut().template.nics.push(Nic::default()),
            Tag::History => self.vm_mut().history.push(History::default()),
            Tag::ContextKey => {
                name.clone_into(&mut self.context_key);
            }
            _ => {}
        }
        if tag.collects() {
            self.text.clear();
        }
        Ok(tag)
    }

    fn vm_mut(&mut self) -> &mut VmRecord {
        &mut self.current.get_or_insert_with(Building::default).vm
    }

    fn end(&mut self, tag: Tag, out: &mut Vec<VmRecord>) -> Result<(), VmXmlError> {
        if tag.collects() {
            let b = self.current.get_or_insert_with(Building::default);
            let v = self.text.value();
            match tag {
                Tag::VmField(f) => b.set_vm(f, v)?,
                Tag::TplField(f) => b.set_template(f, v),
                Tag::DiskField(f) => b.set_disk(f, v),
                Tag::NicField(f) => b.set_nic(f, v),
                Tag::HistField(f) => b.set_history(f, v)?,
                Tag::ContextKey => {
                    b.vm.template
                        .context
                        .push((std::mem::take(&mut self.context_key), v.to_owned()))
                }
                Tag::ErrorMessage => b.vm.template.error_message = opt_string(v),
                _ => {}
            }
            return Ok(());
        }
        match tag {
            Tag::Nic => {
                if let Some(b) = self.current.as_mut() {
                    b.end_nic();
                }
            }
            Tag::Vm => {
                if let Some(b) = self.current.take() {
                    out.push(b.finish()?);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn parse(doc: &str, root: Root, part: Part, out: &mut Vec<VmRecord>) -> Result<(), VmXmlError> {
    parse_tokens(Scanner::new(doc), root, part, out)
}

fn parse_tokens<'a>(
    mut sc: impl Tokens<'a>,
    root: Root,
    part: Part,
    out: &mut Vec<VmRecord>,
) -> Result<(), VmXmlError> {
    let mut p = Parser {
        root,
        stack: Vec::with_capacity(8),
        text: Text::default(),
        context_key: String::new(),
        current: None,
        seen_root: false,
    };
    // Names of the open elements, for matching end tags.
    let mut open: Vec<&str> = Vec::with_capacity(8);
    if matches!(part, Part::Middle | Part::Tail) {
        p.stack.push(Tag::Pool);
        p.seen_root = true;
        open.push("VM_POOL");
    }
    loop {
        match sc.next()? {
            Ev::Start(name) => {
                let tag = p.start(name)?;
                p.stack.push(tag);
                open.push(name);
            }
            Ev::Empty(name) => {
                let tag = p.start(name)?;
                p.end(tag, out)?;
            }
            Ev::End(name) => {
                if open.pop() != Some(name) {
                    return Err(sc.error(format!("unexpected end tag </{name}>")));
                }
                let tag = p.stack.pop().ok_or(VmXmlError::Truncated)?;
                p.end(tag, out)?;
            }
            Ev::Text(raw) => {
                let t = sc.chars(raw)?;
                if p.stack.last().is_some_and(|t| t.collects()) {
                    decode_text(&t, Some(&mut p.text.buf)).map_err(|e| sc.error(e))?;
                } else if p.stack.is_empty() && !t.trim().is_empty() {
                    return Err(sc.error("text outside the root element"));
                } else if t.contains('&') {
                    decode_text(&t, None).map_err(|e| sc.error(e))?;
                }
            }
            Ev::CData(raw) => {
                let t = sc.chars(raw)?;
                if p.stack.last().is_some_and(|t| t.collects()) {
                    p.text.push_cdata(&t);
                } else if p.stack.is_empty() {
                    return Err(sc.error("CDATA outside the root element"));
                }
            }
            Ev::Eof => break,
        }
    }
    let complete = match part {
        Part::Whole | Part::Tail => p.stack.is_empty(),
        Part::Head | Part::Middle => p.stack == [Tag::Pool] && p.current.is_none(),
    };
    if !complete || !p.seen_root {
        return Err(VmXmlError::Truncated);
    }
    Ok(())
}

/// What the scanner found.
enum Ev<'a> {
    Start(&'a str),
    Empty(&'a str),
    End(&'a str),
    /// Raw text (entities not yet resolved).
    Text(&'a str),
    CData(&'a str),
    Eof,
}

/// A minimal XML scanner for oned's documents: elements (attributes skipped), text, CDATA,
/// comments and processing instructions; DOCTYPE is refused. Well-formedness of what it reads
/// is checked (names, quotes, terminators, end tags via the caller); positions are bytes.
struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

/// Byte classes for XML names: 1 = may start a name, 2 = may continue one (non-ASCII bytes
/// are accepted as both; the document is valid UTF-8).
const NAME_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80 {
            t[i] = 3;
        } else if b.is_ascii_digit() || b == b'.' || b == b'-' {
            t[i] = 2;
        }
        i += 1;
    }
    t
};

fn is_name_start(b: u8) -> bool {
    NAME_CLASS[b as usize] & 1 != 0
}

fn is_name_char(b: u8) -> bool {
    NAME_CLASS[b as usize] != 0
}

impl<'a> Scanner<'a> {
    fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    fn error(&self, message: impl Into<String>) -> VmXmlError {
        VmXmlError::Xml {
            position: self.pos as u64,
            message: message.into(),
        }
    }

    /// `s[from..to]`; the callers' indices sit next to ASCII delimiters, so always on char
    /// boundaries (and out-of-range gives "", never a panic).
    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.s.get(from..to).unwrap_or("")
    }

    /// Moves past `terminator` searched from absolute `from`; returns the text before it.
    /// (memchr on its first byte: the sections are mostly short, a substring searcher's set-up
    /// would cost more than the search.)
    fn until(&mut self, from: usize, terminator: &str, what: &str) -> Result<&'a str, VmXmlError> {
        let b = self.s.as_bytes();
        let t = terminator.as_bytes();
        let mut at = from;
        loop {
            let found = t.first().and_then(|&c| memchr::memchr(c, b.get(at..)?));
            let Some(k) = found else {
                return Err(self.error(format!("unterminated {what}")));
            };
            let start = at + k;
            if b.get(start..).is_some_and(|h| h.starts_with(t)) {
                self.pos = start + t.len();
                return Ok(self.slice(from, start));
            }
            at = start + 1;
        }
    }

    /// End (absolute index) of the name starting at absolute `at`.
    fn name_end(&self, at: usize) -> Result<usize, VmXmlError> {
        let b = self.s.as_bytes();
        if !b.get(at).is_some_and(|&c| is_name_start(c)) {
            return Err(self.error("invalid element name"));
        }
        let mut j = at + 1;
        while j < b.len() && is_name_char(b[j]) {
            j += 1;
        }
        Ok(j)
    }

    fn skip_ws(&self, mut j: usize) -> usize {
        let b = self.s.as_bytes();
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    }

    fn next(&mut self) -> Result<Ev<'a>, VmXmlError> {
        let b = self.s.as_bytes();
        loop {
            let i = self.pos;
            let Some(&first) = b.get(i) else {
                return Ok(Ev::Eof);
            };
            if first != b'<' {
                let end = b
                    .get(i..)
                    .and_then(|h| memchr::memchr(b'<', h))
                    .map_or(b.len(), |k| i + k);
                self.pos = end;
                return Ok(Ev::Text(self.slice(i, end)));
            }
            match b.get(i + 1) {
                Some(b'/') => {
                    // The caller compares the name with the open element's (checked when it
                    // was opened), so the end tag needs no character checks of its own.
                    let Some(close) = b.get(i + 2..).and_then(|h| memchr::memchr(b'>', h)) else {
                        return Err(self.error("unterminated end tag"));
                    };
                    self.pos = i + 2 + close + 1;
                    return Ok(Ev::End(self.slice(i + 2, i + 2 + close).trim_end()));
                }
                Some(b'?') => {
                    self.until(i + 2, "?>", "processing instruction")?;
                }
                Some(b'!') => {
                    let rest = b.get(i..).unwrap_or_default();
                    if rest.starts_with(b"<![CDATA[") {
                        return Ok(Ev::CData(self.until(i + 9, "]]>", "CDATA section")?));
                    } else if rest.starts_with(b"<!--") {
                        self.until(i + 4, "-->", "comment")?;
                    } else {
                        return Err(self.error("DOCTYPE and other declarations are not accepted"));
                    }
                }
                _ => {
                    let end = self.name_end(i + 1)?;
                    let name = self.slice(i + 1, end);
                    let mut j = end;
                    // attributes: (ws name ws = ws quoted)*, then > or />
                    loop {
                        let k = self.skip_ws(j);
                        match b.get(k) {
                            Some(b'>') => {
                                self.pos = k + 1;
                                return Ok(Ev::Start(name));
                            }
                            Some(b'/') if b.get(k + 1) == Some(&b'>') => {
                                self.pos = k + 2;
                                return Ok(Ev::Empty(name));
                            }
                            Some(&c) if k > j && is_name_start(c) => {
                                let eq = self.skip_ws(self.name_end(k)?);
                                if b.get(eq) != Some(&b'=') {
                                    return Err(
                                        self.error(format!("attribute without value in <{name}>"))
                                    );
                                }
                                let q = self.skip_ws(eq + 1);
                                let quote = match b.get(q) {
                                    Some(&c @ (b'"' | b'\'')) => c,
                                    _ => {
                                        return Err(
                                            self.error(format!("unquoted attribute in <{name}>"))
                                        )
                                    }
                                };
                                let close =
                                    b.get(q + 1..).and_then(|h| memchr::memchr2(quote, b'<', h));
                                match close.map(|c| q + 1 + c) {
                                    Some(c) if b.get(c) == Some(&quote) => j = c + 1,
                                    _ => {
                                        return Err(
                                            self.error(format!("malformed attribute in <{name}>"))
                                        )
                                    }
                                }
                            }
                            _ => return Err(self.error(format!("malformed start tag <{name}"))),
                        }
                    }
                }
            }
        }
    }
}

/// A source of tokens for the reader: the document itself ([`Scanner`]) or the document as it
/// lies escaped in an XML-RPC string ([`EscapedScanner`]).
trait Tokens<'a> {
    fn next(&mut self) -> Result<Ev<'a>, VmXmlError>;
    fn error(&self, message: impl Into<String>) -> VmXmlError;
    /// The document's characters of a `Text` or `CData` token.
    fn chars(&self, raw: &'a str) -> Result<Cow<'a, str>, VmXmlError>;
}

impl<'a> Tokens<'a> for Scanner<'a> {
    fn next(&mut self) -> Result<Ev<'a>, VmXmlError> {
        Scanner::next(self)
    }
    fn error(&self, message: impl Into<String>) -> VmXmlError {
        Scanner::error(self, message)
    }
    fn chars(&self, raw: &'a str) -> Result<Cow<'a, str>, VmXmlError> {
        Ok(Cow::Borrowed(raw))
    }
}

/// Reads a VM document where it lies in the body of an XML-RPC `<string>`, still escaped (`<`
/// written `&lt;`, `&` written `&amp;`, ...), without unescaping a copy first. It handles what
/// XML-RPC servers write: the five predefined entities for markup and text, raw `>` and quotes;
/// it refuses (an error) anything else — character references, carriage returns, comments,
/// processing instructions, attributes — and the caller then unescapes and reads the copy, so
/// its result is always that of [`parse_pool`] on the unescaped document.
struct EscapedScanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> EscapedScanner<'a> {
    fn refuse(&self, what: &str) -> VmXmlError {
        VmXmlError::Xml {
            position: self.pos as u64,
            message: format!("escaped document: {what}"),
        }
    }

    /// Past a `>` or `&gt;` at `at`, if there is one.
    fn after_gt(&self, at: usize) -> Option<usize> {
        let b = self.s.as_bytes().get(at..)?;
        if b.starts_with(b">") {
            Some(at + 1)
        } else if b.starts_with(b"&gt;") {
            Some(at + 4)
        } else {
            None
        }
    }
}

impl<'a> Tokens<'a> for EscapedScanner<'a> {
    fn next(&mut self) -> Result<Ev<'a>, VmXmlError> {
        let b = self.s.as_bytes();
        let i = self.pos;
        let Some(rest) = b.get(i..).filter(|r| !r.is_empty()) else {
            return Ok(Ev::Eof);
        };
        if !rest.starts_with(b"&lt;") {
            // Text up to the next escaped `<` (any other `&` starts a reference in the text;
            // a raw `<` cannot be in a string body, and is refused).
            let mut at = i;
            let end = loop {
                match b.get(at..).and_then(|h| memchr::memchr2(b'&', b'<', h)) {
                    None => break b.len(),
                    Some(k) if b[at + k] == b'<' => return Err(self.refuse("a raw '<'")),
                    Some(k) if b[at + k..].starts_with(b"&lt;") => break at + k,
                    Some(k) => at += k + 1,
                }
            };
            self.pos = end;
            return Ok(Ev::Text(self.s.get(i..end).unwrap_or("")));
        }
        let m = i + 4;
        match b.get(m) {
            Some(b'/') => {
                let Some(k) = b.get(m + 1..).and_then(|h| memchr::memchr2(b'>', b'&', h)) else {
                    return Err(self.refuse("unterminated end tag"));
                };
                let j = m + 1 + k;
                let Some(after) = self.after_gt(j) else {
                    return Err(self.refuse("a reference in an end tag"));
                };
                self.pos = after;
                Ok(Ev::End(self.s.get(m + 1..j).unwrap_or("").trim_end()))
            }
            Some(b'!') if b[m..].starts_with(b"![CDATA[") => {
                let from = m + 8;
                let mut at = from;
                loop {
                    let Some(k) = b.get(at..).and_then(|h| memchr::memchr(b']', h)) else {
                        return Err(self.refuse("unterminated CDATA section"));
                    };
                    let j = at + k;
                    if b[j..].starts_with(b"]]") {
                        if let Some(after) = self.after_gt(j + 2) {
                            self.pos = after;
                            return Ok(Ev::CData(self.s.get(from..j).unwrap_or("")));
                        }
                    }
                    at = j + 1;
                }
            }
            Some(&c) if is_name_start(c) => {
                let mut end = m + 1;
                while end < b.len() && is_name_char(b[end]) {
                    end += 1;
                }
                let name = self.s.get(m..end).unwrap_or("");
                let mut k = end;
                while k < b.len() && b[k].is_ascii_whitespace() {
                    k += 1;
                }
                if let Some(after) = self.after_gt(k) {
                    self.pos = after;
                    return Ok(Ev::Start(name));
                }
                if b.get(k) == Some(&b'/') {
                    if let Some(after) = self.after_gt(k + 1) {
                        self.pos = after;
                        return Ok(Ev::Empty(name));
                    }
                }
                Err(self.refuse("attributes or a malformed start tag"))
            }
            _ => Err(self.refuse("markup other than elements and CDATA")),
        }
    }

    fn error(&self, message: impl Into<String>) -> VmXmlError {
        VmXmlError::Xml {
            position: self.pos as u64,
            message: message.into(),
        }
    }

    /// The escaping of the XML-RPC string undone: the five predefined entities only.
    fn chars(&self, raw: &'a str) -> Result<Cow<'a, str>, VmXmlError> {
        let bytes = raw.as_bytes();
        if memchr::memchr3(b'&', b'\r', b'<', bytes).is_none() {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = String::with_capacity(raw.len());
        let mut last = 0;
        for i in memchr::memchr3_iter(b'&', b'\r', b'<', bytes) {
            if i < last {
                continue;
            }
            let rest = &bytes[i..];
            let (c, len) = if rest.starts_with(b"&lt;") {
                ('<', 4)
            } else if rest.starts_with(b"&gt;") {
                ('>', 4)
            } else if rest.starts_with(b"&amp;") {
                ('&', 5)
            } else if rest.starts_with(b"&quot;") {
                ('"', 6)
            } else if rest.starts_with(b"&apos;") {
                ('\'', 6)
            } else {
                return Err(self.refuse("a character reference, a carriage return or a raw '<'"));
            };
            out.push_str(raw.get(last..i).unwrap_or(""));
            out.push(c);
            last = i + len;
        }
        out.push_str(raw.get(last..).unwrap_or(""));
        Ok(Cow::Owned(out))
    }
}

/// Resolves the entity and character references of `raw` into `out` (or only checks them).
fn decode_text(raw: &str, mut out: Option<&mut String>) -> Result<(), String> {
    let mut rest = raw;
    while let Some(amp) = memchr::memchr(b'&', rest.as_bytes()) {
        if let Some(o) = out.as_deref_mut() {
            push_normalized(o, rest.get(..amp).unwrap_or(""));
        }
        let after = rest.get(amp + 1..).unwrap_or("");
        let semi = after
            .find(';')
            .filter(|&i| i <= 10)
            .ok_or("'&' without a reference")?;
        let name = after.get(..semi).unwrap_or("");
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .filter(|&c| c >= ' ' || matches!(c, '\t' | '\n' | '\r'))
                    .ok_or_else(|| format!("unknown reference &{name};"))?
            }
        };
        if let Some(o) = out.as_deref_mut() {
            o.push(c);
        }
        rest = after.get(semi + 1..).unwrap_or("");
    }
    if let Some(o) = out {
        push_normalized(o, rest);
    }
    Ok(())
}

/// Appends `s` with XML's end-of-line handling (CR LF and lone CR become LF).
fn push_normalized(out: &mut String, s: &str) {
    if memchr::memchr(b'\r', s.as_bytes()).is_some() {
        out.push_str(&s.replace("\r\n", "\n").replace('\r', "\n"));
    } else {
        out.push_str(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(format!("{FIX}/{path}")).unwrap()
    }

    fn one(path: &str) -> VmRecord {
        parse_vm(&read(&format!("opennebula-3.8.5/{path}"))).unwrap()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    fn ctx(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 test@example.org";

    /// probe-vm-1's template (the same in every capture of VM 0).
    fn probe_vm_1_template() -> VmTemplate {
        VmTemplate {
            cpu: Some(0.5),
            vcpu: Some(1),
            memory_mib: Some(256),
            name: s("probe-vm-1"),
            disks: vec![
                Disk {
                    disk_id: Some(0),
                    source: s("dummy_path"),
                    image: s("ttylinux"),
                    image_id: Some(0),
                    target: s("hda"),
                    disk_type: s("FILE"),
                    size_mib: None,
                    driver: None,
                    format: None,
                    readonly: Some(false),
                },
                Disk {
                    disk_id: Some(1),
                    target: s("hdb"),
                    disk_type: s("swap"),
                    size_mib: Some(128),
                    ..Disk::default()
                },
            ],
            nics: vec![Nic {
                network: s("stratus-priv"),
                ip: s("192.168.100.1"),
                mac: s("02:00:c0:a8:64:01"),
                network_id: Some(0),
                ip6: None,
            }],
            context: ctx(&[
                ("DISK_ID", "2"),
                ("HOSTNAME", "probe-vm-1"),
                ("IP_PUBLIC", "192.168.100.1"),
                ("SSH_PUBLIC_KEY", KEY),
                ("TARGET", "hdc"),
            ]),
            error_message: None,
            inbound_ports: None,
            client_token: None,
            template_id: None,
        }
    }

    fn hist(seq: i64, stime: i64, etime: i64) -> History {
        History {
            seq,
            hostname: "dummyhost".into(),
            stime,
            etime,
        }
    }

    fn probe_vm_1(state: i32, lcm: i32, etime: i64, history: Vec<History>) -> VmRecord {
        VmRecord {
            id: 0,
            uid: 0,
            gid: 0,
            uname: "oneadmin".into(),
            gname: "oneadmin".into(),
            name: "probe-vm-1".into(),
            state,
            lcm_state: lcm,
            stime: 1795655396,
            etime,
            deploy_id: if history.is_empty() {
                String::new()
            } else {
                "dummyhost:probe-vm-1:dummy".into()
            },
            template: probe_vm_1_template(),
            history,
        }
    }

    #[test]
    fn vm_info_running() {
        let vm = one("vm-info.xml");
        assert_eq!(vm, probe_vm_1(3, 3, 0, vec![hist(0, 1795655397, 0)]));
        assert_eq!(vm.current_host(), Some("dummyhost"));
    }

    #[test]
    fn vm_info_pending_has_no_host() {
        let vm = one("vm-info-pending.xml");
        assert_eq!(vm, probe_vm_1(1, 0, 0, vec![]));
        assert_eq!(vm.current_host(), None);
    }

    #[test]
    fn vm_info_poweroff() {
        let vm = one("vm-info-poweroff.xml");
        let h = vec![
            hist(0, 1795655397, 1795655403),
            hist(1, 1795655403, 1795655403),
        ];
        assert_eq!(vm, probe_vm_1(8, 0, 0, h));
    }

    #[test]
    fn vm_info_done_has_four_history_records() {
        let vm = one("vm-info-done.xml");
        let h = vec![
            hist(0, 1795655397, 1795655403),
            hist(1, 1795655403, 1795655403),
            hist(2, 1795655403, 1795655404),
            hist(3, 1795655406, 1795655406),
        ];
        assert_eq!(vm, probe_vm_1(6, 0, 1795655406, h));
        assert_eq!(vm.current_host(), Some("dummyhost"));
    }

    fn probe_vm_5() -> VmRecord {
        VmRecord {
            id: 4,
            uid: 0,
            gid: 0,
            uname: "oneadmin".into(),
            gname: "oneadmin".into(),
            name: "probe-vm-5".into(),
            state: 3,
            lcm_state: 3,
            stime: 1795655425,
            etime: 0,
            deploy_id: "dummyhost:probe-vm-5:dummy".into(),
            template: VmTemplate {
                cpu: Some(1.0),
                vcpu: None,
                memory_mib: Some(512),
                name: s("probe-vm-5"),
                disks: vec![Disk {
                    disk_id: Some(0),
                    source: s("https://marketplace.example.org/metadata/AbCdEf"),
                    image: None,
                    image_id: None,
                    target: s("hda"),
                    disk_type: s("fs"),
                    size_mib: Some(1024),
                    driver: None,
                    format: s("ext3"),
                    readonly: None,
                }],
                nics: vec![Nic {
                    network: s("stratus-priv"),
                    ip: s("192.168.100.50"),
                    mac: s("02:00:c0:a8:64:32"),
                    network_id: Some(0),
                    ip6: None,
                }],
                context: ctx(&[("DISK_ID", "1"), ("SSH_PUBLIC_KEY", KEY), ("TARGET", "hdd")]),
                error_message: None,
                inbound_ports: None,
                client_token: None,
                template_id: None,
            },
            history: vec![History {
                seq: 0,
                hostname: "dummyhost".into(),
                stime: 1795655430,
                etime: 0,
            }],
        }
    }

    #[test]
    fn vm_info_source_disk_and_monitored() {
        assert_eq!(one("vm-info-source-disk.xml"), probe_vm_5());
        // Monitoring values (top-level MEMORY/CPU/NET_*) are not part of the record.
        assert_eq!(one("vm-info-monitored.xml"), probe_vm_5());
    }

    fn pool(path: &str) -> Vec<VmRecord> {
        parse_pool(&read(&format!("opennebula-3.8.5/{path}"))).unwrap()
    }

    /// A VM as a pool listing gives it: without CONTEXT.
    fn listed(mut vm: VmRecord) -> VmRecord {
        vm.template.context.clear();
        vm
    }

    #[test]
    fn pool_listings_leave_context_out() {
        let doc = read("opennebula-3.8.5/vmpool-info.xml");
        let vms = parse_pool(&doc).unwrap();
        assert!(vms.iter().all(|vm| vm.template.context.is_empty()));
        assert!(!one("vm-info.xml").template.context.is_empty());
    }

    #[test]
    fn vmpool_info_single_vm() {
        let running = vec![listed(probe_vm_1(3, 3, 0, vec![hist(0, 1795655397, 0)]))];
        assert_eq!(pool("vmpool-info.xml"), running);
        assert_eq!(pool("vmpool-info-mine.xml"), running);
        assert_eq!(
            pool("vmpool-info-pending.xml"),
            vec![listed(probe_vm_1(1, 0, 0, vec![]))]
        );
    }

    /// (id, name, state, lcm, ip, seqs of the history records, cpu, memory, disks)
    type Summary = (
        i64,
        String,
        i32,
        i32,
        Option<String>,
        Vec<i64>,
        Option<f64>,
        Option<u64>,
        usize,
    );

    fn summary(vms: &[VmRecord]) -> Vec<Summary> {
        vms.iter()
            .map(|v| {
                (
                    v.id,
                    v.name.clone(),
                    v.state,
                    v.lcm_state,
                    v.template.nics.first().and_then(|n| n.ip.clone()),
                    v.history.iter().map(|h| h.seq).collect(),
                    v.template.cpu,
                    v.template.memory_mib,
                    v.template.disks.len(),
                )
            })
            .collect()
    }

    #[test]
    fn vmpool_info_all_and_done() {
        let all = pool("vmpool-info-all.xml");
        let ip1 = s("192.168.100.1");
        let expected_all: Vec<Summary> = vec![
            (
                0,
                "probe-vm-1".into(),
                6,
                0,
                ip1.clone(),
                vec![3],
                Some(0.5),
                Some(256),
                2,
            ),
            (
                1,
                "probe-vm-2".into(),
                6,
                0,
                ip1.clone(),
                vec![0],
                Some(0.5),
                Some(256),
                2,
            ),
            (
                2,
                "probe-vm-3".into(),
                6,
                0,
                ip1.clone(),
                vec![0],
                Some(0.5),
                Some(256),
                2,
            ),
            (
                3,
                "probe-vm-4".into(),
                3,
                3,
                ip1,
                vec![1],
                Some(0.5),
                Some(256),
                2,
            ),
            (
                4,
                "probe-vm-5".into(),
                3,
                3,
                s("192.168.100.50"),
                vec![0],
                Some(1.0),
                Some(512),
                1,
            ),
            (5, "y".into(), 1, 0, None, vec![], Some(1.0), Some(64), 0),
        ];
        assert_eq!(summary(&all), expected_all);
        // pool listings carry only the current HISTORY: VM 0's is SEQ 3
        assert_eq!(all[0].history, vec![hist(3, 1795655406, 1795655406)]);
        assert_eq!(all[4], listed(probe_vm_5()));
        let done = pool("vmpool-info-done.xml");
        assert_eq!(summary(&done), expected_all[..3].to_vec());
        assert!(all
            .iter()
            .all(|v| v.current_host() == v.history.first().map(|_| "dummyhost")));
    }

    #[test]
    fn stratuslab_sample_pretty_printed() {
        let vm = parse_vm(&read("stratuslab/compute/vm-with-extra-disk-in-pdisk.xml")).unwrap();
        assert_eq!(vm.id, 10755);
        assert_eq!((vm.uid, vm.gid), (10, 1));
        assert_eq!(vm.uname, "adricmic");
        assert_eq!(vm.gname, "users");
        assert_eq!(vm.name, "withlun.1:a9bc274f-42c0-4e76-ae16-0cc2fbe92a46");
        assert_eq!((vm.state, vm.lcm_state), (3, 3));
        assert_eq!((vm.stime, vm.etime), (1419246046, 0));
        assert_eq!(vm.deploy_id, "one-10755");
        let t = &vm.template;
        assert_eq!(
            (t.cpu, t.vcpu, t.memory_mib),
            (Some(2.0), Some(2), Some(16384))
        );
        assert_eq!(t.name.as_deref(), Some(vm.name.as_str()));
        assert_eq!(
            t.disks,
            vec![
                Disk {
                    disk_id: Some(0),
                    source: s(
                        "https://marketplace.stratuslab.eu/metadata/Pd1C0IktTPRXFPGlEHfxrF7gxOF"
                    ),
                    target: s("vda"),
                    driver: s("raw"),
                    readonly: Some(false),
                    ..Disk::default()
                },
                Disk {
                    disk_id: Some(1),
                    target: s("vdb"),
                    disk_type: s("swap"),
                    size_mib: Some(1536),
                    readonly: Some(false),
                    ..Disk::default()
                },
                Disk {
                    disk_id: Some(2),
                    source: s("pdisk:154.48.152.10:8445/95b75092-17d2-459f-9fa0-cd1deaa721f1"),
                    target: s("vdc"),
                    disk_type: s("block"),
                    ..Disk::default()
                },
            ]
        );
        assert_eq!(
            t.nics,
            vec![Nic {
                network: s("public"),
                ip: s("192.187.24.93"),
                mac: s("00:16:c1:93:6c:5d"),
                network_id: Some(25),
                ip6: None,
            }]
        );
        assert_eq!(t.context.len(), 16);
        assert_eq!(t.context[0], ("PUBLIC_KEY".into(), "ssh-rsa abc".into()));
        assert_eq!(
            t.context[6],
            ("SLIPSTREAM_COOKIE".into(), "empty; Path:/".into())
        );
        assert_eq!(t.context[15], ("TARGET".into(), "hdd".into()));
        assert_eq!(
            vm.history,
            vec![History {
                seq: 0,
                hostname: "192.168.112.64".into(),
                stime: 1419246062,
                etime: 0
            }]
        );
        assert_eq!(vm.current_host(), Some("192.168.112.64"));
    }

    #[test]
    fn current_host_is_highest_seq_whatever_the_order() {
        let vm = VmRecord {
            history: vec![
                History {
                    seq: 2,
                    hostname: "c".into(),
                    ..History::default()
                },
                History {
                    seq: 0,
                    hostname: "a".into(),
                    ..History::default()
                },
            ],
            ..VmRecord::default()
        };
        assert_eq!(vm.current_host(), Some("c"));
    }

    #[test]
    fn entities_cdata_and_ipv6() {
        let xml = b"<VM><ID>7</ID><STATE>3</STATE><LCM_STATE>3</LCM_STATE>\
            <NAME>a &amp; b &#x41;</NAME><TEMPLATE><CONTEXT><K>\n  <![CDATA[ keep ]]>\n</K>\
            <E/><S><![CDATA[x]]]]><![CDATA[>y]]></S></CONTEXT>\
            <NIC><IP6_LINK>fe80::1</IP6_LINK><IP6_SITE>fec0::1</IP6_SITE><IP6_GLOBAL>2001:db8::1</IP6_GLOBAL></NIC>\
            <NIC><IP6_SITE>fec0::2</IP6_SITE></NIC><NIC/>\
            <ERROR><MESSAGE>boom</MESSAGE><TIMESTAMP>x</TIMESTAMP></ERROR>\
            <INBOUND_PORTS><![CDATA[22,80]]></INBOUND_PORTS><UNKNOWN><DEEP>1</DEEP></UNKNOWN></TEMPLATE></VM>";
        let vm = parse_vm(xml).unwrap();
        assert_eq!(vm.name, "a & b A");
        assert_eq!(
            vm.template.context,
            ctx(&[("K", " keep "), ("E", ""), ("S", "x]]>y")])
        );
        let ip6: Vec<_> = vm.template.nics.iter().map(|n| n.ip6.clone()).collect();
        assert_eq!(ip6, vec![s("2001:db8::1"), s("fec0::2"), None]);
        assert_eq!(vm.template.error_message, s("boom"));
        assert_eq!(vm.template.inbound_ports, s("22,80"));
    }

    #[test]
    fn client_token_from_template_or_user_template() {
        // Synthetic documents in the two shapes oned stores a custom top-level attribute in:
        // TEMPLATE (3.x) and USER_TEMPLATE (4.0 on; see src/fleet.rs for the source check).
        let v3 = b"<VM><ID>1</ID><STATE>1</STATE><LCM_STATE>0</LCM_STATE><TEMPLATE>\
            <CLIENT_TOKEN><![CDATA[tok-3]]></CLIENT_TOKEN></TEMPLATE></VM>";
        assert_eq!(parse_vm(v3).unwrap().template.client_token, s("tok-3"));
        let v7 = b"<VM_POOL><VM><ID>2</ID><STATE>1</STATE><LCM_STATE>0</LCM_STATE><TEMPLATE/>\
            <USER_TEMPLATE><LABELS>x</LABELS><CLIENT_TOKEN><![CDATA[tok-7]]></CLIENT_TOKEN>\
            </USER_TEMPLATE></VM><VM><ID>3</ID><STATE>1</STATE><LCM_STATE>0</LCM_STATE>\
            <USER_TEMPLATE/></VM></VM_POOL>";
        let pool = parse_pool(v7).unwrap();
        assert_eq!(pool[0].template.client_token, s("tok-7"));
        assert_eq!(pool[1].template.client_token, None);
    }

    #[test]
    fn errors_are_specific() {
        let e = parse_vm(b"<VM_POOL></VM_POOL>").unwrap_err();
        assert_eq!(e.to_string(), "expected root element <VM>, found <VM_POOL>");
        let e = parse_pool(b"<VM><ID>1</ID></VM>").unwrap_err();
        assert!(matches!(
            e,
            VmXmlError::Root {
                expected: "VM_POOL",
                ..
            }
        ));
        let e = parse_vm(b"<VM><ID>x1</ID></VM>").unwrap_err();
        assert_eq!(e.to_string(), "<ID> is not a number: \"x1\"");
        let e = parse_vm(b"<VM><ID>1</ID><STATE>1</STATE></VM>").unwrap_err();
        assert_eq!(e.to_string(), "VM document without <LCM_STATE>");
        assert!(matches!(
            parse_vm(b"<VM><ID>1</ID>").unwrap_err(),
            VmXmlError::Truncated
        ));
        assert!(matches!(parse_vm(b"").unwrap_err(), VmXmlError::Truncated));
        assert!(matches!(
            parse_vm(b"<VM></WM>").unwrap_err(),
            VmXmlError::Xml { .. }
        ));
        assert!(matches!(
            parse_vm(b"<VM>&bogus;</VM>").unwrap_err(),
            VmXmlError::Xml { .. }
        ));
        assert!(matches!(
            parse_vm(b"<VM><ID>1</ID><STATE>1</STATE><LCM_STATE>0</LCM_STATE></VM><VM/>")
                .unwrap_err(),
            VmXmlError::Root { .. }
        ));
        assert!(matches!(
            parse_vm(b"<VM><NAME>\xff</NAME></VM>").unwrap_err(),
            VmXmlError::Xml { .. }
        ));
        assert_eq!(e.kind(), Kind::Malformed);
        assert_eq!(parse_pool(b"<VM_POOL/>").unwrap(), vec![]);
        assert_eq!(
            parse_pool(b"<?xml version=\"1.0\"?>\n<VM_POOL>\n</VM_POOL>\n").unwrap(),
            vec![]
        );
    }

    /// `doc` as an XML-RPC server writes it inside `<string>`: `<`, `>` and `&` escaped.
    fn escape(doc: &[u8]) -> String {
        let mut out = String::new();
        crate::xmlrpc::escape_into(std::str::from_utf8(doc).unwrap(), &mut out);
        out
    }

    /// `parse_pool` of the unescaped text (an unescaping error at byte 0): what
    /// `parse_pool_escaped` must always give.
    fn serial(raw: &str) -> Result<Vec<VmRecord>, String> {
        let doc =
            crate::xmlrpc::unescape(raw).map_err(|e| format!("malformed VM XML at byte 0: {e}"))?;
        parse_pool(doc.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn escaped_pools_read_as_the_captures() {
        for name in [
            "vmpool-info.xml",
            "vmpool-info-all.xml",
            "vmpool-info-done.xml",
            "vmpool-info-mine.xml",
            "vmpool-info-pending.xml",
        ] {
            let xml = read(&format!("opennebula-3.8.5/{name}"));
            let expected = parse_pool(&xml).unwrap();
            assert!(!expected.is_empty(), "{name}");
            let raw = escape(&xml);
            assert!(
                raw.starts_with("&lt;VM_POOL&gt;&lt;VM&gt;&lt;ID&gt;"),
                "{name}"
            );
            assert_eq!(parse_pool_escaped(&raw).unwrap(), expected, "{name}");
            // Only `<` and `&` escaped (`>` may stay raw in XML text).
            let raw = raw.replace("&gt;", ">");
            assert_eq!(parse_pool_escaped(&raw).unwrap(), expected, "{name}, raw >");
        }
    }

    #[test]
    fn escaped_forms_the_fast_reader_refuses_read_the_same() {
        let xml = read("opennebula-3.8.5/vmpool-info-all.xml");
        let expected = parse_pool(&xml).unwrap();
        let raw = escape(&xml);
        for (what, changed) in [
            (
                "character reference",
                raw.replacen("&lt;NAME&gt;", "&#60;NAME&gt;", 1),
            ),
            (
                "hex character reference",
                raw.replacen("&lt;/NAME&gt;", "&lt;/NAME&#x3E;", 1),
            ),
            ("CR LF", raw.replacen("&lt;/VM&gt;", "&lt;/VM&gt;\r\n", 1)),
            (
                "comment",
                raw.replacen("&lt;VM&gt;", "&lt;!-- x --&gt;&lt;VM&gt;", 1),
            ),
            ("declaration", format!("&lt;?xml version=\"1.0\"?&gt;{raw}")),
            (
                "attribute",
                raw.replacen("&lt;VM&gt;", "&lt;VM a=&quot;1&quot;&gt;", 1),
            ),
            (
                "quot entity",
                raw.replacen("&lt;VM&gt;", "&lt;VM a=\"&amp;quot;\"&gt;", 1),
            ),
        ] {
            assert_eq!(parse_pool_escaped(&changed).unwrap(), expected, "{what}");
        }
        // Escaped entities inside the document's text and CDATA are the document's own.
        let raw = escape(
            b"<VM_POOL><VM><ID>7</ID><STATE>3</STATE><LCM_STATE>3</LCM_STATE>\
            <NAME>a &amp; b &#x41; &lt;c&gt;</NAME><DEPLOY_ID><![CDATA[x<y&z]]></DEPLOY_ID>\
            <TEMPLATE><CONTEXT><K><![CDATA[x<y&z]]></K></CONTEXT></TEMPLATE></VM></VM_POOL>",
        );
        let vms = parse_pool_escaped(&raw).unwrap();
        assert_eq!(vms[0].name, "a & b A <c>");
        assert_eq!(vms[0].deploy_id, "x<y&z");
        // A listing's records leave CONTEXT out.
        assert!(vms[0].template.context.is_empty());
        assert_eq!(Ok(vms), serial(&raw));
    }

    #[test]
    fn escaped_errors_are_the_serial_ones() {
        for raw in [
            "&lt;VM_POOL&gt;&lt;VM&gt;&lt;ID&gt;x&lt;/ID&gt;&lt;/VM&gt;&lt;/VM_POOL&gt;",
            "&lt;VM_POOL&gt;&lt;VM&gt;&lt;/WM&gt;&lt;/VM_POOL&gt;",
            "&lt;VM_POOL&gt;&lt;VM&gt;&amp;bogus;&lt;/VM&gt;&lt;/VM_POOL&gt;",
            "&lt;VM_POOL&gt;&lt;VM&gt;&lt;ID&gt;1",
            "&lt;VM&gt;&lt;/VM&gt;",
            "&lt;VM_POOL",
            "&bogus;",
            "&lt",
            "",
        ] {
            let got = parse_pool_escaped(raw).map_err(|e| e.to_string());
            assert!(got.is_err(), "{raw}");
            assert_eq!(got, serial(raw), "{raw}");
        }
        assert_eq!(parse_pool_escaped("&lt;VM_POOL/&gt;").unwrap(), vec![]);
    }

    /// A pool big enough to be read in pieces, its VM names chosen by `name(i)`.
    fn big_pool(vms: usize, name: impl Fn(usize) -> String) -> Vec<u8> {
        let one = String::from_utf8(read("opennebula-3.8.5/vm-info.xml")).unwrap();
        let mut doc = String::from("<VM_POOL>");
        for i in 0..vms {
            let vm = one
                .replacen("<ID>0</ID>", &format!("<ID>{i}</ID>"), 1)
                .replacen(
                    "<NAME>probe-vm-1</NAME>",
                    &format!("<NAME><![CDATA[{}]]></NAME>", name(i)),
                    1,
                );
            doc.push_str(&vm);
        }
        doc.push_str("</VM_POOL>");
        doc.into_bytes()
    }

    #[test]
    fn big_pools_read_in_pieces_as_in_one() {
        let plain = big_pool(2000, |i| format!("vm-{i}"));
        assert!(plain.len() > 4 * PIECE_MIN_BYTES);
        let mut whole = Vec::new();
        parse(utf8(&plain).unwrap(), Root::Pool, Part::Whole, &mut whole).unwrap();
        assert_eq!(whole.len(), 2000);
        assert_eq!(whole[1999].id, 1999);
        assert_eq!(whole[1999].name, "vm-1999");
        assert_eq!(parse_pool(&plain).unwrap(), whole);
        assert_eq!(parse_pool_escaped(&escape(&plain)).unwrap(), whole);
        // A name that looks like the cut marker, everywhere: cuts fall inside CDATA, the pieces
        // do not read, and the whole document is read in one piece.
        let tricky = big_pool(2000, |i| format!("x</VM><VM>{i}"));
        let vms = parse_pool(&tricky).unwrap();
        assert_eq!(vms.len(), 2000);
        assert_eq!(vms[1000].name, "x</VM><VM>1000");
        assert_eq!(parse_pool_escaped(&escape(&tricky)).unwrap(), vms);
        // A broken document gives the serial error whatever the pieces.
        let mut broken = plain.clone();
        let at = broken.len() * 3 / 4;
        broken.splice(at..at, b"<".iter().copied());
        let serial_error = parse(
            utf8(&broken).unwrap(),
            Root::Pool,
            Part::Whole,
            &mut Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(parse_pool(&broken).unwrap_err().to_string(), serial_error);
    }

    use crate::pieces::Work;

    /// The pieces a `PoolPieces` of the escaped document `raw` hands over (the ids of their
    /// VMs), and whether it read the document. `helpers` more threads take pieces too.
    fn streamed_with(raw: &str, helpers: usize) -> (bool, Vec<Vec<i64>>) {
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&got);
        let pieces = pool_pieces(
            bytes::Bytes::from(raw.to_owned()),
            0..raw.len(),
            Box::new(move |vms: Vec<VmRecord>| {
                sink.lock()
                    .unwrap()
                    .push(vms.iter().map(|vm| vm.id).collect())
            }),
        );
        let ok = std::thread::scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|| while pieces.read_one() {});
            }
            pieces.finish()
        });
        assert!(!pieces.read_one());
        let got = got.lock().unwrap().clone();
        (ok, got)
    }

    fn streamed(raw: &str) -> (bool, Vec<Vec<i64>>) {
        streamed_with(raw, 0)
    }

    #[test]
    fn big_pools_stream_in_order_as_read_in_one() {
        let plain = big_pool(3000, |i| format!("vm-{i}"));
        let raw = escape(&plain);
        assert!(raw.len() > 4 * STREAM_PIECE_BYTES);
        let (ok, pieces) = streamed(&raw);
        assert!(ok);
        assert!(pieces.len() >= 4, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|p| !p.is_empty()));
        let ids: Vec<i64> = pieces.concat();
        assert_eq!(ids, (0..3000).collect::<Vec<i64>>());
        // Several readers: the same pieces, in the same order.
        assert_eq!(streamed_with(&raw, 3), (true, pieces));
        // The records themselves are parse_pool's.
        let records = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&records);
        let all = pool_pieces(
            bytes::Bytes::from(raw.clone()),
            0..raw.len(),
            Box::new(move |vms| sink.lock().unwrap().extend(vms)),
        );
        assert!(all.finish());
        assert_eq!(*records.lock().unwrap(), parse_pool(&plain).unwrap());
    }

    #[test]
    fn small_pools_stream_in_one_piece() {
        let raw = escape(&read("opennebula-3.8.5/vmpool-info-all.xml"));
        let (ok, pieces) = streamed(&raw);
        assert!(ok);
        assert_eq!(pieces.len(), 1);
        let expected: Vec<i64> = serial(&raw).unwrap().iter().map(|vm| vm.id).collect();
        assert_eq!(pieces[0], expected);
        assert_eq!(streamed("&lt;VM_POOL/&gt;"), (true, vec![vec![]]));
    }

    #[test]
    fn streams_that_cannot_be_read_in_pieces_say_so() {
        // Cut markers inside CDATA: where a cut falls inside one, the pieces around it do not
        // read; any pieces that did are the serial ones.
        let tricky = escape(&big_pool(3000, |i| format!("x</VM><VM>{i}")));
        let (ok, pieces) = streamed(&tricky);
        let expected: Vec<i64> = serial(&tricky).unwrap().iter().map(|vm| vm.id).collect();
        if ok {
            assert_eq!(pieces.concat(), expected);
        } else {
            assert!(expected.starts_with(&pieces.concat()));
        }
        // A VM the fast reading refuses (an attribute) near the end.
        let odd = String::from_utf8(big_pool(3000, |i| format!("vm-{i}")))
            .unwrap()
            .replacen("<VM><ID>2990</ID>", "<VM a=\"1\"><ID>2990</ID>", 1);
        assert!(odd.contains("a=\"1\""));
        let (ok, pieces) = streamed(&escape(odd.as_bytes()));
        assert!(!ok);
        assert!(!pieces.is_empty());
        let (ok, some) = streamed_with(&escape(odd.as_bytes()), 2);
        assert!(!ok);
        assert!((0..3000).collect::<Vec<i64>>().starts_with(&some.concat()));
        assert_eq!(parse_pool(odd.as_bytes()).unwrap().len(), 3000);
        // A document broken near its end: the first pieces were handed over, then `false`.
        let mut broken = big_pool(3000, |i| format!("vm-{i}"));
        let at = broken.len() - 5000;
        broken.splice(at..at, b"<".iter().copied());
        let (ok, pieces) = streamed(&escape(&broken));
        assert!(!ok);
        assert!(!pieces.is_empty());
        // Not a pool at all.
        assert!(!streamed("&lt;VM&gt;&lt;/VM&gt;").0);
        assert!(!streamed("").0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse_vm(&bytes);
            let _ = parse_pool(&bytes);
        }

        #[test]
        fn escaped_reads_as_unescaped(cut in 0usize..2455, byte in proptest::prelude::any::<u8>()) {
            let mut raw = escape(&read("opennebula-3.8.5/vmpool-info.xml")).into_bytes();
            let at = cut * raw.len() / 2455;
            raw[at] = byte;
            if let Ok(raw) = std::str::from_utf8(&raw) {
                let got = parse_pool_escaped(raw).map_err(|e| e.to_string());
                proptest::prop_assert_eq!(got, serial(raw));
            }
        }

        #[test]
        fn escaped_reads_as_unescaped_with_tricky_insertions(
            edits in proptest::collection::vec((0usize..3781, 0usize..14), 1..4)
        ) {
            const TRICKY: [&str; 14] = [
                "&amp;", "&amp;amp;", "&#60;", "&#x3E;", "]]&gt;", "]]>", "&lt;![CDATA[",
                "&lt;/VM&gt;&lt;VM&gt;", "\r", "&quot;", "&lt;X/&gt;", "&lt;X&gt;&lt;/X&gt;", ">",
                "&lt;!-- c --&gt;",
            ];
            let mut raw = escape(&read("opennebula-3.8.5/vmpool-info.xml"));
            for (at, which) in edits {
                let mut at = at.min(raw.len());
                while !raw.is_char_boundary(at) {
                    at -= 1;
                }
                raw.insert_str(at, TRICKY[which]);
            }
            let got = parse_pool_escaped(&raw).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(got, serial(&raw));
        }

        #[test]
        fn never_panics_on_mangled_capture(cut in 0usize..2436, byte in proptest::prelude::any::<u8>()) {
            let mut xml = read("opennebula-3.8.5/vm-info.xml");
            xml[cut] = byte;
            let _ = parse_vm(&xml);
            xml.truncate(cut);
            proptest::prop_assert!(parse_vm(&xml).is_err());
        }
    }
}
