//! The listing state machines, owned by the driver core: what a listing keeps while its
//! events arrive, and the rules it finishes with.
//!
//! - [`Listed`] / [`by_site`]: per-site results flattened — the items of the sites that
//!   answered (in site order), and the sites that failed; under `strict` the first failure
//!   instead.
//! - [`NodeCollector`]: the events of a [`NodeStream`](super::NodeStream). Each batch of
//!   records is given to a `build` callback as it arrives (Python builds its `Node`s there,
//!   while Rust reads the next pieces); a site whose fast reading was discarded starts again;
//!   [`finish`](NodeCollector::finish) applies the per-site rules and reports the sites whose
//!   volumes are unknown (raised under `strict`).
//! - [`ImageCollector`]: the events of an [`ImageStream`](super::ImageStream). Each readable
//!   entry is built as it arrives; [`finish`](ImageCollector::finish) picks one image per
//!   identifier ([`select_image_indices`]) and applies the OS/architecture/endorser filters
//!   ([`image_matches`]).
//!
//! The synchronous Python binding (`src/python/core.rs`) and the async path
//! ([`Driver::list_nodes`](super::Driver::list_nodes), [`Driver::list_images`](super::Driver::list_images))
//! run exactly this code; `src/python/` only converts records and calls `build`.

use std::sync::Arc;

use super::{image_matches, select_image_indices, ImageEvent, NodeEvent, NodeRecord};
use crate::error::{Error, Result};
use crate::marketplace::{ImageEntry, MarketplaceError};
use crate::pieces::Work;

type MarketplaceResult<T> = std::result::Result<T, MarketplaceError>;

/// The error of a site whose listing stopped without its [`NodeEvent::Done`].
pub fn ended_early(site: &str) -> Error {
    Error::internal(format!("site '{site}': the listing stopped before its end"))
}

/// A multi-site listing's outcome: the items of the sites that answered, in site order, and
/// each failed site with its error.
#[derive(Debug)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub failures: Vec<(String, Error)>,
}

/// Flattens per-site results (in site order) into a [`Listed`]; under `strict`, the first
/// failure (in site order) is the result.
pub fn by_site<R>(results: Vec<(String, Result<Vec<R>>)>, strict: bool) -> Result<Listed<R>> {
    let mut items = Vec::new();
    let mut failures = Vec::new();
    for (site, result) in results {
        match result {
            Ok(records) => items.extend(records),
            Err(e) if strict => return Err(e),
            Err(e) => failures.push((site, e)),
        }
    }
    Ok(Listed { items, failures })
}

/// A node listing's outcome: [`Listed`] plus the sites whose volumes are unknown (their pdisk
/// failed; the nodes' `volumes` are `None` there).
#[derive(Debug)]
pub struct NodesListed<T> {
    pub nodes: Listed<T>,
    pub volumes_unknown: Vec<(String, Error)>,
}

/// A node listing in progress (see the module doc).
#[derive(Debug)]
pub struct NodeCollector<T> {
    sites: Vec<String>,
    built: Vec<Vec<T>>,
    results: Vec<Option<Result<()>>>,
    volumes_unknown: Vec<(usize, Error)>,
}

impl<T> NodeCollector<T> {
    /// For the sites of a [`NodeStream`](super::NodeStream), in its order.
    pub fn new(sites: &[String]) -> Self {
        NodeCollector {
            sites: sites.to_vec(),
            built: sites.iter().map(|_| Vec::new()).collect(),
            results: sites.iter().map(|_| None).collect(),
            volumes_unknown: Vec::new(),
        }
    }

    /// Takes one event. A batch of records is handed to `build` with its site's list, to push
    /// the objects built from it on (the records are `build`'s to keep or drop); a reply being
    /// read in pieces is returned, so that the caller can help reading it.
    pub fn take<E>(
        &mut self,
        event: NodeEvent,
        build: &mut impl FnMut(Vec<NodeRecord>, &mut Vec<T>) -> std::result::Result<(), E>,
    ) -> std::result::Result<Option<Arc<dyn Work>>, E> {
        match event {
            NodeEvent::Records { site, records } => {
                if let Some(list) = self.built.get_mut(site) {
                    build(records, list)?;
                }
            }
            NodeEvent::Discard { site } => {
                if let Some(list) = self.built.get_mut(site) {
                    list.clear();
                }
            }
            NodeEvent::Done { site, result } => {
                if let Some(slot) = self.results.get_mut(site) {
                    *slot = Some(result);
                }
            }
            NodeEvent::VolumesUnknown { site, error } => self.volumes_unknown.push((site, error)),
            NodeEvent::Pieces(work) => return Ok(Some(work)),
        }
        Ok(None)
    }

    /// The outcome once the events are over: a site that never said it was done failed inside
    /// ([`ended_early`]). Under `strict`, the first failed site's error, else the first
    /// volumes-unknown error, is the result.
    pub fn finish(self, strict: bool) -> Result<NodesListed<T>> {
        let results = self
            .sites
            .iter()
            .zip(self.results)
            .zip(self.built)
            .map(|((name, result), built)| {
                let result = result.unwrap_or_else(|| Err(ended_early(name)));
                (name.clone(), result.map(|()| built))
            })
            .collect();
        let nodes = by_site(results, strict)?;
        let mut volumes_unknown = Vec::with_capacity(self.volumes_unknown.len());
        for (site, error) in self.volumes_unknown {
            if strict {
                return Err(error);
            }
            let name = self.sites.get(site).cloned().unwrap_or_default();
            volumes_unknown.push((name, error));
        }
        Ok(NodesListed {
            nodes,
            volumes_unknown,
        })
    }
}

/// The Marketplace filters of `list_images` (case-insensitive OS and architecture, endorser
/// e-mail); `None` lets everything through.
#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    pub os: Option<String>,
    pub arch: Option<String>,
    pub endorser: Option<String>,
}

impl ImageFilter {
    fn admits(&self, entry: &ImageEntry) -> bool {
        image_matches(
            entry,
            self.os.as_deref(),
            self.arch.as_deref(),
            self.endorser.as_deref(),
        )
    }
}

/// An image listing in progress (see the module doc).
#[derive(Debug)]
pub struct ImageCollector<T> {
    site: String,
    got: Vec<Vec<(MarketplaceResult<ImageEntry>, Option<T>)>>,
    results: Vec<Option<Result<()>>>,
}

/// An image listing's outcome: the picked, filtered images (in listing order) among every
/// entry read.
#[derive(Debug)]
pub struct ImagesListed<T> {
    picked: Vec<usize>,
    entries: Vec<(usize, MarketplaceResult<ImageEntry>)>,
    built: Vec<Option<T>>,
}

impl<T> ImagesListed<T> {
    /// The picked images' objects, and every entry read (for the caller to free elsewhere).
    pub fn into_built(self) -> (Vec<T>, Vec<(usize, MarketplaceResult<ImageEntry>)>) {
        let mut built = self.built;
        let images = self
            .picked
            .into_iter()
            .filter_map(|i| built.get_mut(i).and_then(Option::take))
            .collect();
        (images, self.entries)
    }

    /// The picked entries themselves.
    pub fn into_entries(self) -> Vec<ImageEntry> {
        let mut taken: Vec<Option<ImageEntry>> =
            self.entries.into_iter().map(|(_, e)| e.ok()).collect();
        self.picked
            .into_iter()
            .filter_map(|i| taken.get_mut(i).and_then(Option::take))
            .collect()
    }
}

impl<T> ImageCollector<T> {
    /// For the `listings` of an [`ImageStream`](super::ImageStream) of `site`.
    pub fn new(site: &str, listings: usize) -> Self {
        ImageCollector {
            site: site.to_owned(),
            got: (0..listings).map(|_| Vec::new()).collect(),
            results: (0..listings).map(|_| None).collect(),
        }
    }

    /// Takes one event: each readable entry is built at once; a reply being read in pieces is
    /// returned, so that the caller can help reading it.
    pub fn take<E>(
        &mut self,
        event: ImageEvent,
        build: &mut impl FnMut(&ImageEntry) -> std::result::Result<T, E>,
    ) -> std::result::Result<Option<Arc<dyn Work>>, E> {
        match event {
            ImageEvent::Entries { listing, entries } => {
                if let Some(list) = self.got.get_mut(listing) {
                    list.reserve(entries.len());
                    for e in entries {
                        let built = match &e {
                            Ok(entry) => Some(build(entry)?),
                            Err(_) => None,
                        };
                        list.push((e, built));
                    }
                }
            }
            ImageEvent::Discard { listing } => {
                if let Some(list) = self.got.get_mut(listing) {
                    list.clear();
                }
            }
            ImageEvent::Done { listing, result } => {
                if let Some(slot) = self.results.get_mut(listing) {
                    *slot = Some(result);
                }
            }
            ImageEvent::Pieces(work) => return Ok(Some(work)),
        }
        Ok(None)
    }

    /// The outcome: any failed listing is the site's error; otherwise one image per identifier
    /// (the best-ranked listing, then the newest endorsement), filtered.
    pub fn finish(self, filter: &ImageFilter) -> Result<ImagesListed<T>> {
        for result in self.results {
            result.unwrap_or_else(|| Err(ended_early(&self.site)))?;
        }
        let mut entries = Vec::new();
        let mut built = Vec::new();
        for (listing, list) in self.got.into_iter().enumerate() {
            for (entry, object) in list {
                entries.push((listing, entry));
                built.push(object);
            }
        }
        let (winners, _) = select_image_indices(&entries);
        let picked = winners
            .into_iter()
            .filter(|&i| matches!(entries.get(i), Some((_, Ok(entry))) if filter.admits(entry)))
            .collect();
        Ok(ImagesListed {
            picked,
            entries,
            built,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn err(text: &str) -> Error {
        Error::internal(text.to_owned())
    }

    #[test]
    fn by_site_keeps_site_order_and_reports_failures_unless_strict() {
        let results = || {
            vec![
                ("a".to_owned(), Ok(vec![1, 2])),
                ("b".to_owned(), Err(err("b is down"))),
                ("c".to_owned(), Ok(vec![3])),
                ("d".to_owned(), Err(err("d is down"))),
            ]
        };
        let listed = by_site(results(), false).expect("not strict");
        assert_eq!(listed.items, vec![1, 2, 3]);
        let failed: Vec<_> = listed.failures.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(failed, ["b", "d"]);
        let strict = by_site(results(), true).expect_err("strict");
        assert!(strict.to_string().contains("b is down"), "{strict}");
    }

    #[test]
    fn node_collector_builds_per_batch_restarts_after_discard_and_finishes_per_site() {
        use crate::one::vm::VmRecord;
        let record = |id: i64| NodeRecord {
            vm: VmRecord {
                id,
                ..VmRecord::default()
            },
            ..NodeRecord::default()
        };
        let sites = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let mut c: NodeCollector<i64> = NodeCollector::new(&sites);
        let mut build = |records: Vec<NodeRecord>, out: &mut Vec<i64>| {
            out.extend(records.iter().map(|r| r.vm.id));
            Ok::<(), ()>(())
        };
        let events = vec![
            NodeEvent::Records {
                site: 1,
                records: vec![record(10)],
            },
            NodeEvent::Records {
                site: 0,
                records: vec![record(1), record(2)],
            },
            NodeEvent::Discard { site: 0 },
            NodeEvent::Records {
                site: 0,
                records: vec![record(3)],
            },
            NodeEvent::VolumesUnknown {
                site: 1,
                error: err("pdisk down"),
            },
            NodeEvent::Done {
                site: 0,
                result: Ok(()),
            },
            NodeEvent::Done {
                site: 1,
                result: Ok(()),
            },
            // site 2 never says it is done: it ended early
        ];
        for e in events {
            assert!(c.take(e, &mut build).expect("build").is_none());
        }
        let listed = c.finish(false).expect("not strict");
        assert_eq!(listed.nodes.items, vec![3, 10]);
        assert_eq!(listed.nodes.failures.len(), 1);
        assert_eq!(listed.nodes.failures[0].0, "c");
        assert_eq!(listed.volumes_unknown.len(), 1);
        assert_eq!(listed.volumes_unknown[0].0, "b");
    }

    #[test]
    fn node_collector_strict_raises_a_site_failure_then_unknown_volumes() {
        let sites = ["a".to_owned()];
        let mut build = |_: Vec<NodeRecord>, _: &mut Vec<()>| Ok::<(), ()>(());
        let mut c: NodeCollector<()> = NodeCollector::new(&sites);
        let done = NodeEvent::Done {
            site: 0,
            result: Ok(()),
        };
        c.take(done, &mut build).expect("take");
        let unknown = NodeEvent::VolumesUnknown {
            site: 0,
            error: err("pdisk down"),
        };
        c.take(unknown, &mut build).expect("take");
        let e = c.finish(true).expect_err("strict");
        assert!(e.to_string().contains("pdisk down"), "{e}");
    }

    #[test]
    fn node_collector_stops_at_the_first_build_error() {
        let sites = ["a".to_owned()];
        let mut c: NodeCollector<()> = NodeCollector::new(&sites);
        let mut build = |_: Vec<NodeRecord>, _: &mut Vec<()>| Err("no");
        let records = NodeEvent::Records {
            site: 0,
            records: vec![NodeRecord::default()],
        };
        assert_eq!(c.take(records, &mut build).err(), Some("no"));
    }
}
