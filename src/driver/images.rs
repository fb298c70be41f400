//! Marketplace images: streamed listings, one image per identifier (valid before expired
//! before deprecated, then the newest endorsement), filters, and image references of a create.

use super::*;

/// What [`Driver::stream_images`] sends; `listing` numbers its listings (valid, then expired,
/// then deprecated, as asked).
#[derive(Debug)]
pub enum ImageEvent {
    /// More entries of a listing, in listing order (those contradicting its status dropped).
    Entries {
        listing: usize,
        entries: Vec<MarketplaceResult<ImageEntry>>,
    },
    /// Forget the entries of the listing sent so far (all of them follow).
    Discard { listing: usize },
    /// The listing is complete, or failed.
    Done { listing: usize, result: Result<()> },
    /// A listing being read piece by piece: the receiver may read pieces itself.
    Pieces(Arc<dyn Work>),
}

/// The number of listings a [`Driver::stream_images`] reads, and its events.
#[derive(Debug)]
pub struct ImageStream {
    pub listings: usize,
    pub events: tokio::sync::mpsc::UnboundedReceiver<ImageEvent>,
    /// Cancels the listings when dropped before their end.
    pub producer: AbortOnDrop,
}

/// The operation named in `list_images` errors.
pub(super) const LIST_IMAGES: &str = "list_images (GET /metadata)";

/// The listings `list_images` reads, in rank order.
pub(super) fn image_statuses(include_expired: bool, include_deprecated: bool) -> Vec<StatusFilter> {
    let mut statuses = vec![StatusFilter::Valid];
    if include_expired {
        statuses.push(StatusFilter::Expired);
    }
    if include_deprecated {
        statuses.push(StatusFilter::Deprecated);
    }
    statuses
}

/// Trusted but checked: deprecation is in the document itself, so an entry that contradicts
/// the status it was listed under is dropped (and said so).
pub(super) fn checked_entries(
    site: &str,
    status: StatusFilter,
    entries: Vec<MarketplaceResult<ImageEntry>>,
) -> Vec<MarketplaceResult<ImageEntry>> {
    let wants_deprecated = status == StatusFilter::Deprecated;
    entries
        .into_iter()
        .filter(|e| match e {
            Ok(entry) if entry.deprecated.is_some() != wants_deprecated => {
                log::warn!(
                    target: "stratuslab_libcloud",
                    "site '{site}': Marketplace listed {} as {} but the entry says otherwise; dropped",
                    entry.identifier,
                    status.as_param()
                );
                false
            }
            _ => true,
        })
        .collect()
}

/// `list_images`' filters: OS and architecture (case-insensitive), endorser e-mail.
pub fn image_matches(
    e: &ImageEntry,
    os: Option<&str>,
    arch: Option<&str>,
    endorser: Option<&str>,
) -> bool {
    let eq = |a: &Option<String>, b: Option<&str>| match b {
        None => true,
        Some(b) => a
            .as_deref()
            .map(|a| a.eq_ignore_ascii_case(b))
            .unwrap_or(false),
    };
    eq(&e.os, os)
        && eq(&e.arch, arch)
        && match endorser {
            None => true,
            Some(m) => e
                .endorser
                .as_ref()
                .map(|x| x.email.eq_ignore_ascii_case(m))
                .unwrap_or(false),
        }
}

pub(super) type MarketplaceResult<T> = std::result::Result<T, marketplace::MarketplaceError>;

/// One image per identifier from ranked listing entries (rank = position of the listing's
/// status: valid before expired before deprecated): the best-ranked entry wins, then the newest
/// endorsement (several endorsers of one image, or several dates). Listing order is kept.
/// Unreadable entries are skipped with a warning (the first one's error is returned too); an
/// identifier that does not match the SHA-1 checksum is logged (and flagged in the entry).
pub(super) fn select_images(
    entries: Vec<(usize, MarketplaceResult<ImageEntry>)>,
) -> (Vec<ImageEntry>, Option<marketplace::MarketplaceError>) {
    let (winners, first_error) = select_image_indices(&entries);
    let mut taken: Vec<Option<MarketplaceResult<ImageEntry>>> =
        entries.into_iter().map(|(_, e)| Some(e)).collect();
    let first_error = first_error
        .and_then(|i| taken.get_mut(i).and_then(Option::take))
        .and_then(|e| e.err());
    let out = winners
        .into_iter()
        .filter_map(|i| taken.get_mut(i).and_then(Option::take))
        .filter_map(|e| e.ok())
        .collect();
    (out, first_error)
}

/// [`select_images`] by index: the winners' indices into `entries`, in output order, and the
/// index of the first unreadable entry. Logs as `select_images` does.
pub fn select_image_indices(
    entries: &[(usize, MarketplaceResult<ImageEntry>)],
) -> (Vec<usize>, Option<usize>) {
    // `order[slot]` is the index in `entries` of the best entry of the `slot`-th identifier
    // met (by reference: no identifier copied).
    let mut order: Vec<usize> = Vec::with_capacity(entries.len());
    let mut slot_of: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    let mut first_error = None;
    for (i, (rank, entry)) in entries.iter().enumerate() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                log::warn!(target: "stratuslab_libcloud", "skipping an unreadable Marketplace entry: {e}");
                first_error.get_or_insert(i);
                continue;
            }
        };
        if entry.identifier_mismatch {
            log::warn!(target: "stratuslab_libcloud", "Marketplace entry {}: identifier does not match its SHA-1 checksum {}", entry.identifier, entry.sha1().unwrap_or(""));
        }
        match slot_of.entry(entry.identifier.as_str()) {
            std::collections::hash_map::Entry::Occupied(slot) => {
                let best_index = &mut order[*slot.get()];
                if let (best_rank, Ok(best)) = &entries[*best_index] {
                    if rank < best_rank || (rank == best_rank && entry.created > best.created) {
                        *best_index = i;
                    }
                }
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(order.len());
                order.push(i);
            }
        }
    }
    (order, first_error)
}

pub(super) fn is_pdisk_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(n, p)| {
            p.len() == *n
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// The image id in a root-disk source: the Marketplace identifier of `…/metadata/<id>`, the
/// UUID of a `pdisk:` source, else the source itself.
pub fn image_id_of_source(source: &str) -> String {
    if let Some(i) = source.find("/metadata/") {
        let rest = &source[i + "/metadata/".len()..];
        let id = rest.split('/').next().unwrap_or(rest);
        return id.to_owned();
    }
    if source.starts_with("pdisk:") {
        return source
            .rsplit(['/', ':'])
            .next()
            .unwrap_or(source)
            .to_owned();
    }
    source.to_owned()
}

impl Driver {
    /// Root-disk source, driver, disks bus and inbound ports for an image reference (spec §3.1).
    pub(super) async fn resolve_image(
        &self,
        s: &Site,
        image: &str,
    ) -> Result<(String, Option<String>, Option<String>, Vec<u16>)> {
        let image = image.trim();
        if marketplace::is_valid_identifier(image) {
            let entry = self
                .image_entry(s, image, false, "create_node (Marketplace entry)")
                .await?;
            if entry.locations.is_empty() {
                return Err(Error::invalid(format!(
                    "Image location(s) are not set in manifest for the image with ID {image}"
                )));
            }
            let source = format!("{}/metadata/{image}", s.marketplace.endpoint());
            return Ok((
                source,
                Some(entry.format.clone().unwrap_or_default()),
                entry.disks_bus.clone(),
                entry.inbound_ports.clone(),
            ));
        }
        if is_pdisk_uuid(image) {
            let base = s
                .settings
                .get("pdisk_endpoint")
                .unwrap_or_else(|| s.pdisk.base_url())
                .trim_end_matches('/');
            return Ok((
                format!("pdisk:{base}/{image}"),
                Some("raw".into()),
                None,
                Vec::new(),
            ));
        }
        if image.starts_with("http://") || image.starts_with("https://") {
            return Ok((image.to_owned(), Some("raw".into()), None, Vec::new()));
        }
        Err(Error::invalid(format!(
            "image '{image}' is neither a Marketplace identifier (27 characters of [A-Za-z0-9_-]), a pdisk UUID nor an http(s) URL"
        )))
    }

    /// The entries of one listing per status in `statuses` (fetched concurrently), each with the
    /// rank of its status (its index in `statuses`). The Marketplace decides what is valid,
    /// expired or deprecated with its own clock (spec §5.8); the driver never second-guesses it
    /// with the local clock. A listing without result is empty; any other failure (including a
    /// 404 that is not the server's "no metadata matching query found") is an error.
    pub(super) async fn fetch_entries(
        &self,
        s: &Site,
        base: &ListQuery,
        statuses: &[StatusFilter],
        operation: &str,
    ) -> Result<Vec<(usize, MarketplaceResult<ImageEntry>)>> {
        let listings = join_all(statuses.iter().map(|&status| {
            let query = ListQuery {
                status,
                ..base.clone()
            };
            async move { s.marketplace.list(&query).await }
        }))
        .await;
        let mut out = Vec::new();
        for ((rank, listing), &status) in listings.into_iter().enumerate().zip(statuses) {
            let entries = listing.at(s, Service::Marketplace, operation)?;
            out.extend(
                checked_entries(&s.name, status, entries)
                    .into_iter()
                    .map(|e| (rank, e)),
            );
        }
        Ok(out)
    }

    /// `list_images` as a stream: the listings the options ask for (valid, then expired, then
    /// deprecated) are fetched concurrently and each is read in pieces whose entries are sent
    /// as they are read (entries contradicting their listing's status dropped, as
    /// [`list_images`](Self::list_images) does). The receiver picks the images with
    /// [`select_image_indices`] and [`image_matches`].
    pub fn stream_images(
        self: &Arc<Self>,
        site: &str,
        endorser: Option<&str>,
        include_expired: bool,
        include_deprecated: bool,
    ) -> Result<ImageStream> {
        let index = self.site_index(site)?;
        let statuses = image_statuses(include_expired, include_deprecated);
        let listings = statuses.len();
        let base = ListQuery {
            email: endorser.map(str::to_owned),
            ..ListQuery::default()
        };
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let driver = Arc::clone(self);
        let producer = crate::runtime::spawn(async move {
            join_all(statuses.into_iter().enumerate().map(|(listing, status)| {
                let tx = tx.clone();
                let driver = Arc::clone(&driver);
                let query = ListQuery {
                    status,
                    ..base.clone()
                };
                async move {
                    let result = driver
                        .stream_listing(index, listing, status, query, &tx)
                        .await;
                    // The receiver may be gone (the caller stopped): nothing to tell then.
                    let _ = tx.send(ImageEvent::Done { listing, result });
                }
            }))
            .await;
        })?;
        Ok(ImageStream {
            listings,
            events,
            producer: AbortOnDrop(producer.abort_handle()),
        })
    }

    /// One listing of [`stream_images`](Self::stream_images): fetched, then read on a
    /// blocking thread ([`marketplace::listing_pieces`], else [`marketplace::parse_listing`]).
    pub(super) async fn stream_listing(
        self: &Arc<Self>,
        index: usize,
        listing: usize,
        status: StatusFilter,
        query: ListQuery,
        tx: &tokio::sync::mpsc::UnboundedSender<ImageEvent>,
    ) -> Result<()> {
        let s = &self.sites[index];
        let Some(body) =
            s.marketplace
                .list_reply(&query)
                .await
                .at(s, Service::Marketplace, LIST_IMAGES)?
        else {
            return Ok(());
        };
        let driver = Arc::clone(self);
        let tx = tx.clone();
        let read = tokio::task::spawn_blocking(move || {
            let s = &driver.sites[index];
            let out = tx.clone();
            let site = s.name.clone();
            let deliver = Arc::new(move |entries| {
                let entries = checked_entries(&site, status, entries);
                let _ = out.send(ImageEvent::Entries { listing, entries });
            });
            let sink = Arc::clone(&deliver);
            let pieces =
                marketplace::listing_pieces(body.clone(), Box::new(move |e| sink(e))).map(Arc::new);
            if let Some(pieces) = &pieces {
                let _ = tx.send(ImageEvent::Pieces(Arc::clone(pieces) as Arc<dyn Work>));
            }
            let result = match pieces {
                Some(pieces) if pieces.finish() => Ok(()),
                _ => {
                    let _ = tx.send(ImageEvent::Discard { listing });
                    marketplace::parse_listing(&body).map(|entries| deliver(entries))
                }
            };
            s.marketplace.recycle(body);
            result
        });
        match read.await {
            Ok(result) => result.at(s, Service::Marketplace, LIST_IMAGES),
            Err(e) => Err(Error::internal(format!(
                "site '{}': reading the image listing failed: {e}",
                s.name
            ))),
        }
    }

    pub(super) async fn image_entry(
        &self,
        s: &Site,
        id: &str,
        include_expired: bool,
        operation: &str,
    ) -> Result<ImageEntry> {
        if !marketplace::is_valid_identifier(id) {
            return Err(Error::invalid(format!(
                "'{id}' is not a Marketplace image identifier (27 characters of [A-Za-z0-9_-])"
            )));
        }
        let query = ListQuery {
            identifier: Some(id.to_owned()),
            ..ListQuery::default()
        };
        let statuses: &[StatusFilter] = if include_expired {
            &[
                StatusFilter::Valid,
                StatusFilter::Expired,
                StatusFilter::Deprecated,
            ]
        } else {
            &[StatusFilter::Valid]
        };
        let operation = format!("{operation} (GET /metadata)");
        let entries = self.fetch_entries(s, &query, statuses, &operation).await?;
        let context = || s.context(Service::Marketplace, &operation);
        let (mut images, first_error) = select_images(entries);
        images.retain(|e| e.identifier == id);
        match (images.into_iter().next(), first_error) {
            (Some(image), _) => Ok(image),
            (None, Some(error)) => Err(Error::remote(context(), error)),
            (None, None) => Err(Error::remote(
                context(),
                marketplace::MarketplaceError::NotFound {
                    identifier: id.to_owned(),
                },
            )),
        }
    }

    /// `list_images` of one site's Marketplace: the valid entries, plus the expired and/or the
    /// deprecated ones when asked (a deprecated entry is included whatever its date), one per
    /// identifier, filtered by OS, architecture (case-insensitive) and endorser e-mail: the
    /// entries of [`stream_images`](Self::stream_images), collected by the one image listing
    /// ([`ImageCollector`]).
    pub async fn list_images(
        self: &Arc<Self>,
        site: &str,
        filter: &ImageFilter,
        include_expired: bool,
        include_deprecated: bool,
    ) -> Result<Vec<ImageEntry>> {
        let ImageStream {
            listings,
            mut events,
            producer: _producer,
        } = self.stream_images(
            site,
            filter.endorser.as_deref(),
            include_expired,
            include_deprecated,
        )?;
        let mut listing = ImageCollector::new(site, listings);
        let mut nothing = |_: &ImageEntry| Ok::<(), std::convert::Infallible>(());
        while let Some(event) = events.recv().await {
            // The blocking reader reads every piece itself: nothing to help with here.
            let Ok(_pieces) = listing.take(event, &mut nothing);
        }
        Ok(listing.finish(filter)?.into_entries())
    }

    /// `get_image`: the valid entry with this identifier (newest endorsement); with
    /// `include_expired`, an expired or deprecated one when no valid one exists.
    pub async fn get_image(
        &self,
        site: &str,
        id: &str,
        include_expired: bool,
    ) -> Result<ImageEntry> {
        let s = self.site(site)?;
        self.image_entry(s, id, include_expired, "get_image").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, email: &str, created: &str) -> ImageEntry {
        ImageEntry {
            identifier: id.to_owned(),
            created: Some(created.to_owned()),
            endorser: Some(marketplace::Endorser {
                email: email.to_owned(),
                ..marketplace::Endorser::default()
            }),
            ..ImageEntry::default()
        }
    }

    #[test]
    fn select_images_one_per_identifier_valid_first_then_newest() {
        let a = "AAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let b = "BBBBBBBBBBBBBBBBBBBBBBBBBBB";
        let entries = vec![
            (0, Ok(entry(a, "old@x.org", "2012-01-01T00:00:00Z"))),
            (0, Ok(entry(b, "b@x.org", "2013-01-01T00:00:00Z"))),
            (0, Ok(entry(a, "new@x.org", "2014-01-01T00:00:00Z"))),
            (
                0,
                Err(marketplace::MarketplaceError::Entry { reason: "r".into() }),
            ),
            // expired (rank 1) and newer: loses to the valid one
            (1, Ok(entry(a, "expired@x.org", "2015-01-01T00:00:00Z"))),
            // deprecated and newer: loses to b's valid entry
            (2, Ok(entry(b, "deprecated@x.org", "2016-01-01T00:00:00Z"))),
        ];
        let (images, error) = select_images(entries);
        let got: Vec<(&str, &str)> = images
            .iter()
            .map(|e| {
                (
                    e.identifier.as_str(),
                    e.endorser.as_ref().map(|x| x.email.as_str()).unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(got, [(a, "new@x.org"), (b, "b@x.org")]);
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("invalid Marketplace entry: r")
        );
        let (images, error) = select_images(vec![
            (2, Ok(entry(a, "d@x.org", "2016-01-01T00:00:00Z"))),
            (1, Ok(entry(a, "e@x.org", "2010-01-01T00:00:00Z"))),
        ]);
        assert_eq!(images[0].endorser.as_ref().unwrap().email, "e@x.org");
        assert!(error.is_none());
    }

    #[test]
    fn image_ids_from_sources() {
        assert_eq!(
            image_id_of_source(
                "https://marketplace.stratuslab.eu/metadata/Pd1C0IktTPRXFPGlEHfxrF7gxOF"
            ),
            "Pd1C0IktTPRXFPGlEHfxrF7gxOF"
        );
        assert_eq!(
            image_id_of_source("pdisk:154.48.152.10:8445/95b75092-17d2-459f-9fa0-cd1deaa721f1"),
            "95b75092-17d2-459f-9fa0-cd1deaa721f1"
        );
        assert_eq!(image_id_of_source("dummy_path"), "dummy_path");
        assert!(is_pdisk_uuid("95b75092-17d2-459f-9fa0-cd1deaa721f1"));
        assert!(!is_pdisk_uuid("95B75092-17d2-459f-9fa0-cd1deaa721f1"));
    }
}
