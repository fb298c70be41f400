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
//!
//! Files: `records` (the records and the reader's error), `build` (the record builder),
//! `scan` (the plain scanner), `escaped` (the scanner of a document still escaped in an XML-RPC
//! string), `text` (references and line endings), `cut` (the pool cutter: pieces on threads or
//! as a stream).

mod build;
mod cut;
mod escaped;
mod records;
mod scan;
#[cfg(test)]
mod tests;
mod text;

pub use cut::{pool_pieces, PoolPieces};
pub use records::{Disk, History, Nic, VmRecord, VmTemplate, VmXmlError};

use build::{parse, parse_tokens, Part, Root};
use cut::{parse_pool_parallel, read_in_pieces, POOL_CUT_MARKER, POOL_CUT_OFFSET};
use escaped::EscapedScanner;

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

fn utf8(xml: &[u8]) -> Result<&str, VmXmlError> {
    let text = std::str::from_utf8(xml).map_err(|e| VmXmlError::Xml {
        position: e.valid_up_to() as u64,
        message: "not UTF-8".into(),
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
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
