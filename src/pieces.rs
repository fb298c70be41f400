//! A large reply read in pieces by whoever takes the next piece: the thread that reads it
//! ([`Pieces::finish`]) and, when it has nothing else to do, the thread that uses what is read
//! ([`Work::read_one`], e.g. the Python thread building libcloud objects, GIL released). The
//! pieces' items are handed over in document order, each piece as soon as it and every piece
//! before it are read. Used for the VM pool (`one::vm`) and Marketplace listings
//! (`marketplace::rdf`).
//!
//! When a piece does not read (its reader refuses it), nothing more is handed over and
//! `finish` says so: the caller discards what it got and reads the whole document its usual
//! way, whose result and error are the reference.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use bytes::Bytes;

/// Where a piece lies in the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// The only piece.
    Only,
    First,
    Middle,
    Last,
}

/// Reads one piece (a UTF-8 slice of the reply); `None` when it cannot.
pub type Reader<T> = Box<dyn Fn(&str, Position) -> Option<Vec<T>> + Send + Sync>;
/// Receives each piece's items, in document order.
pub type Deliver<T> = Box<dyn Fn(Vec<T>) + Send + Sync>;

/// What the thread using the items can do while it waits for them.
pub trait Work: Send + Sync + std::fmt::Debug {
    /// Whether a piece is still to be taken.
    fn has_more(&self) -> bool;
    /// Reads the next piece nobody took yet, and hands over what is due. False when no piece
    /// was left to take (or the reading failed).
    fn read_one(&self) -> bool;
}

/// Where the pieces stand; behind the lock.
struct Order<T> {
    /// The next piece to hand over.
    due: usize,
    /// Pieces read but not handed over yet (a later one read first).
    ready: BTreeMap<usize, Vec<T>>,
    /// Pieces taken and still being read.
    reading: usize,
    /// A piece did not read, or `finish` returned: nothing more is handed over.
    closed: bool,
}

/// A reply read in pieces; see the module documentation.
pub struct Pieces<T> {
    /// The reply; let go by [`finish`](Self::finish).
    body: Mutex<Option<Bytes>>,
    /// Piece `i` is `body[cuts[i]..cuts[i + 1]]`.
    cuts: Vec<usize>,
    next: AtomicUsize,
    order: Mutex<Order<T>>,
    changed: Condvar,
    read: Reader<T>,
    deliver: Deliver<T>,
}

impl<T> std::fmt::Debug for Pieces<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pieces")
            .field("pieces", &(self.cuts.len() - 1))
            .finish()
    }
}

impl<T: Send> Pieces<T> {
    /// `cuts`: increasing offsets into `body`, the first piece's start to the last one's end
    /// (fewer than two: one empty piece).
    pub fn new(body: Bytes, mut cuts: Vec<usize>, read: Reader<T>, deliver: Deliver<T>) -> Self {
        cuts.dedup();
        while cuts.len() < 2 {
            cuts.push(cuts.last().copied().unwrap_or(0));
        }
        Pieces {
            body: Mutex::new(Some(body)),
            cuts,
            next: AtomicUsize::new(0),
            order: Mutex::new(Order {
                due: 0,
                ready: BTreeMap::new(),
                reading: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            read,
            deliver,
        }
    }

    fn pieces(&self) -> usize {
        self.cuts.len() - 1
    }

    /// Reads pieces until none is left to take (with three or more CPUs, on more threads: one
    /// CPU is left for the thread that uses the items), then waits for those others are
    /// reading. True when every piece was read and handed over; after it returns, nothing
    /// more is, and the reply is no longer held here.
    pub fn finish(&self) -> bool {
        let helpers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(2)
            .min(8)
            .min(self.pieces().saturating_sub(1));
        std::thread::scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|| while self.read_one() {});
            }
            while self.read_one() {}
        });
        let Ok(mut order) = self.order.lock() else {
            return false;
        };
        while order.reading > 0 || (!order.closed && order.due < self.pieces()) {
            order = match self.changed.wait(order) {
                Ok(o) => o,
                Err(_) => return false,
            };
        }
        let ok = !order.closed;
        order.closed = true;
        if let Ok(mut body) = self.body.lock() {
            body.take();
        }
        ok
    }
}

impl<T: Send> Work for Pieces<T> {
    fn has_more(&self) -> bool {
        self.next.load(Ordering::Relaxed) < self.pieces()
            && self.order.lock().is_ok_and(|o| !o.closed)
    }

    fn read_one(&self) -> bool {
        let Ok(mut order) = self.order.lock() else {
            return false;
        };
        if order.closed {
            return false;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.pieces() {
            return false;
        }
        let Some(body) = self.body.lock().ok().and_then(|b| b.clone()) else {
            return false;
        };
        order.reading += 1;
        drop(order);
        let position = match (i, self.pieces()) {
            (_, 1) => Position::Only,
            (0, _) => Position::First,
            (i, n) if i + 1 == n => Position::Last,
            _ => Position::Middle,
        };
        let items = body
            .get(self.cuts[i]..self.cuts[i + 1])
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|piece| (self.read)(piece, position));
        drop(body);
        let Ok(mut order) = self.order.lock() else {
            return false;
        };
        order.reading -= 1;
        match items {
            Some(items) if !order.closed => {
                order.ready.insert(i, items);
                loop {
                    let due = order.due;
                    let Some(items) = order.ready.remove(&due) else {
                        break;
                    };
                    (self.deliver)(items);
                    order.due += 1;
                }
            }
            Some(_) => {}
            None => order.closed = true,
        }
        self.changed.notify_all();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// "a,b;c;d,e" as pieces cut at each ';', items split at ','; a piece with "!" refuses.
    fn run(text: &str, helpers: usize) -> (bool, Vec<Vec<String>>) {
        let mut cuts = vec![0];
        cuts.extend(text.match_indices(';').map(|(i, _)| i + 1));
        cuts.push(text.len());
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&got);
        let pieces = Pieces::new(
            Bytes::from(text.to_owned()),
            cuts,
            Box::new(|piece: &str, _| {
                (!piece.contains('!')).then(|| {
                    piece
                        .trim_end_matches(';')
                        .split(',')
                        .map(str::to_owned)
                        .collect()
                })
            }),
            Box::new(move |items| sink.lock().unwrap().push(items)),
        );
        let ok = std::thread::scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|| while pieces.read_one() {});
            }
            pieces.finish()
        });
        assert!(!pieces.read_one());
        assert!(!pieces.has_more());
        let got = got.lock().unwrap().clone();
        (ok, got)
    }

    #[test]
    fn pieces_are_handed_over_in_order_whoever_reads_them() {
        let text: String = (0..200).map(|i| format!("{i},x{i};")).collect();
        for helpers in [0, 1, 3] {
            let (ok, got) = run(&text, helpers);
            assert!(ok);
            assert_eq!(got.len(), 200);
            assert_eq!(got[7], vec!["7", "x7"]);
            assert_eq!(got[199], vec!["199", "x199"]);
        }
        assert_eq!(run("", 0), (true, vec![vec![String::new()]]));
    }

    #[test]
    fn a_piece_that_does_not_read_stops_the_handing_over() {
        let text: String = (0..200)
            .map(|i| {
                if i == 150 {
                    "!;".to_owned()
                } else {
                    format!("{i};")
                }
            })
            .collect();
        for helpers in [0, 2] {
            let (ok, got) = run(&text, helpers);
            assert!(!ok);
            assert!(got.len() <= 150);
            let expected: Vec<Vec<String>> = (0..got.len()).map(|i| vec![i.to_string()]).collect();
            assert_eq!(got, expected);
        }
    }
}
