//! The pool cutter: a large pool read in pieces cut between top-level `VM`s (on scoped threads,
//! or as a stream through [`crate::pieces`]).

use crate::pieces::{Pieces, Position};

use super::build::{parse, parse_tokens, Part, Root};
use super::escaped::EscapedScanner;
use super::records::{VmRecord, VmXmlError};

/// Below this many bytes per piece a pool is not cut.
pub(super) const PIECE_MIN_BYTES: usize = 1 << 20;
/// At most this many pieces.
pub(super) const MAX_PIECES: usize = 8;

/// The pool read in pieces on several threads, or `None` (too small, one CPU, no cut found,
/// or a piece that does not read on its own).
pub(super) fn parse_pool_parallel(doc: &str) -> Option<Vec<VmRecord>> {
    read_in_pieces(doc, "</VM><VM>", "</VM>".len(), |piece, part, out| {
        parse(piece, Root::Pool, part, out)
    })
}

/// Reads a pool document in pieces cut just after `cut_len` bytes of each `marker` found near
/// 1/n of `doc`, each piece on its own thread; `None` unless every piece reads.
pub(super) fn read_in_pieces(
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

/// Pieces of about this many bytes when a pool is read as a stream ([`pool_pieces`]).
pub(super) const STREAM_PIECE_BYTES: usize = 1 << 20;
/// Where an escaped pool is cut into pieces: between two top-level `VM`s ...
pub(super) const POOL_CUT_MARKER: &str = "&lt;/VM&gt;&lt;VM&gt;";
/// ... just after the first one's end tag.
pub(super) const POOL_CUT_OFFSET: usize = "&lt;/VM&gt;".len();

/// Offsets into `text` cutting `range` into about `pieces` pieces, each cut just after
/// `cut_len` bytes of the first `marker` found from near k/n of the range (fewer pieces when
/// none is found): the range's start, the cuts, its end.
pub(super) fn marker_cuts(
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
