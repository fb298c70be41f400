//! The local cloud's Marketplace: a catalog of RDF/XML entries served like the real server
//! (spec §5.2–§5.4), framework-free.
//!
//! Served: the listing `GET /metadata[/<arg1>[/<arg2>]]` (XML wrapper, or the DataTables JSON
//! object with `?media=json` or `Accept: application/json`) and the single entry
//! `GET /metadata/<id>/<email>/<created>`. Not served: upload (POST), the tag and endorser routes,
//! HTML pages and the single entry's RDF/JSON form (the RDF/XML is sent whatever the Accept).
//! DataTables searches (`sSearch`, `sSearch_1..5`) match case-insensitive substrings where the
//! server used SPARQL regular expressions.

use std::collections::HashMap;
use std::sync::Mutex;

use sha1::{Digest, Sha1};

use super::Reply;
use crate::marketplace::identifier::sha1_hex_to_identifier;
use crate::marketplace::rdf::{is_email, parse_date, parse_document, Root};
use crate::marketplace::{write_entry, write_listing, Endorser, ImageEntry, MarketplaceError};

/// 404 message of a filtered listing without result.
pub const NO_MATCH: &str = "no metadata matching query found";
/// 404 message of a missing single entry (trailing newline included, as the server's).
pub const ENTRY_NOT_FOUND: &str = "metadata entry not found.\n";
/// Validity end of the synthetic entries.
pub const SYNTHETIC_VALID_UNTIL: &str = "2099-12-31T23:59:59Z";
/// Endorsement date of the synthetic entries.
pub const SYNTHETIC_CREATED: &str = "2015-06-01T12:00:00Z";
/// Endorser e-mail of the synthetic entries.
pub const SYNTHETIC_EMAIL: &str = "synthetic@localcloud.example.org";

/// One stored document.
#[derive(Debug, Clone)]
struct Stored {
    raw: String,
    entry: ImageEntry,
    email: String,
    created: String,
    /// `dcterms:valid` in unix seconds.
    valid: i64,
    /// Latest of its (identifier, e-mail) pair.
    latest: bool,
}

/// The entries of one site's Marketplace.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: Vec<Stored>,
    /// (identifier, e-mail, created) → position.
    coordinates: HashMap<(String, String, String), usize>,
    /// (identifier, e-mail) → positions.
    groups: HashMap<(String, String), Vec<usize>>,
    /// Synthetic entries made so far (numbers the next ones).
    synthetic: usize,
    /// The last XML listing rendered: the positions it holds and its body.
    cache: Mutex<Option<(Vec<usize>, Vec<u8>)>>,
}

/// The representation a request prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Xml,
    Json,
    Html,
}

/// A listing filter, classified by the shape of its value like the server does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Filter {
    Email(String),
    Created(String),
    Identifier(String),
}

impl Filter {
    /// `None` for empty or `null` values (ignored by the server).
    fn classify(value: &str) -> Option<Filter> {
        if value.is_empty() || value == "null" {
            None
        } else if is_email(value) {
            Some(Filter::Email(value.to_owned()))
        } else if is_date_shaped(value) {
            Some(Filter::Created(value.to_owned()))
        } else {
            Some(Filter::Identifier(value.to_owned()))
        }
    }

    fn matches(&self, s: &Stored) -> bool {
        match self {
            Filter::Email(v) => &s.email == v,
            Filter::Created(v) => &s.created == v,
            Filter::Identifier(v) => &s.entry.identifier == v,
        }
    }
}

/// `\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z`.
fn is_date_shaped(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The parsed query string of a listing.
#[derive(Debug, Default)]
struct Params {
    status: Option<String>,
    location: Option<String>,
    media: Option<String>,
    filters: Vec<Filter>,
    has_filter_args: bool,
    search: Option<String>,
    column_search: [Option<String>; 6],
    echo: i64,
    display_start: Option<String>,
    display_length: Option<String>,
    sort_column: Option<String>,
    sort_direction: Option<String>,
}

impl Params {
    fn parse(query: &str) -> Params {
        let mut p = Params::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                "status" => p.status = Some(value),
                "location" => p.location = Some(value),
                "media" => p.media = Some(value),
                "identifier" | "email" | "created" => p.add_filter(&value),
                "sSearch" => p.search = Some(value),
                "sEcho" => p.echo = value.trim().parse().unwrap_or(0),
                "iDisplayStart" => p.display_start = Some(value),
                "iDisplayLength" => p.display_length = Some(value),
                "iSortCol_0" => p.sort_column = Some(value),
                "sSortDir_0" => p.sort_direction = Some(value),
                other => {
                    if let Some(n) = other
                        .strip_prefix("sSearch_")
                        .and_then(|n| n.parse::<usize>().ok())
                    {
                        if (1..=5).contains(&n) {
                            p.column_search[n] = Some(value);
                        }
                    }
                }
            }
        }
        p
    }

    fn add_filter(&mut self, value: &str) {
        if let Some(filter) = Filter::classify(value) {
            self.has_filter_args = true;
            self.filters.push(filter);
        }
    }
}

/// The 11 DataTables columns of an entry: `""`, os, osversion, arch, email, kind, created,
/// identifier, location, description, title.
fn columns(s: &Stored) -> [&str; 11] {
    let e = &s.entry;
    [
        "",
        opt(&e.os),
        opt(&e.os_version),
        opt(&e.arch),
        &s.email,
        opt(&e.kind),
        &s.created,
        &e.identifier,
        e.locations.first().map_or("", String::as_str),
        opt(&e.description),
        opt(&e.title),
    ]
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// The first preferred media type of an `Accept` header.
fn preferred_media(accept: Option<&str>) -> Media {
    let Some(accept) = accept else {
        return Media::Html;
    };
    let mut best: Option<(f32, &str)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.map_or(true, |(bq, _)| q > bq) {
            best = Some((q, media));
        }
    }
    match best.map(|(_, m)| m.to_ascii_lowercase()).as_deref() {
        Some("application/json") => Media::Json,
        Some("text/xml" | "application/xml" | "application/rdf+xml") => Media::Xml,
        _ => Media::Html,
    }
}

/// An error in the server's forms: XML `<error>`, JSON `{"<code>" : "<message>"}`, or HTML.
fn error_reply(status: u16, message: &str, media: Media) -> Reply {
    let escaped = quick_xml::escape::escape(message);
    match media {
        Media::Xml => Reply::new(
            status,
            "application/xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?><error>{escaped}</error>"#
            ),
        ),
        Media::Json => {
            let mut body = serde_json::Map::new();
            body.insert(status.to_string(), serde_json::Value::from(message));
            Reply::new(
                status,
                "application/json",
                serde_json::Value::Object(body).to_string(),
            )
        }
        Media::Html => Reply::new(
            status,
            "text/html; charset=UTF-8",
            format!(
                "<html><head><title>{status}</title></head><body><h1>{status}</h1><p>{escaped}</p></body></html>"
            ),
        ),
    }
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Catalog::default()
    }

    /// A catalog of a few synthetic entries (ttylinux, Ubuntu in qcow2, CentOS with inbound
    /// ports, a virtio Debian, a deprecated Fedora), valid until 2099.
    pub fn with_default_entries() -> Self {
        let mut catalog = Catalog::new();
        let specs: [(
            &str,
            &str,
            &str,
            &str,
            &str,
            &[u16],
            Option<&str>,
            Option<&str>,
        ); 5] = [
            ("ttylinux", "9.7", "i486", "raw", "gz", &[], None, None),
            ("ubuntu", "14.04", "x86_64", "qcow2", "gz", &[], None, None),
            (
                "centos",
                "6.5",
                "x86_64",
                "raw",
                "gz",
                &[22, 80, 443],
                None,
                None,
            ),
            (
                "debian",
                "7.8",
                "x86_64",
                "raw",
                "bz2",
                &[22],
                Some("virtio"),
                None,
            ),
            (
                "fedora",
                "14",
                "i386",
                "raw",
                "gz",
                &[],
                None,
                Some("Synthetic deprecation: superseded"),
            ),
        ];
        for (os, os_version, arch, format, compression, ports, bus, deprecated) in specs {
            let mut entry = synthetic_entry(&format!("{os}-{os_version}-{arch}"), 0);
            entry.title = Some(format!("{os}-{os_version}-{arch}-base"));
            entry.description = Some(format!(
                "Synthetic {os} {os_version} {arch} base image of the stratuslab-libcloud local cloud (not a real image)."
            ));
            entry.os = Some(os.to_owned());
            entry.os_version = Some(os_version.to_owned());
            entry.arch = Some(arch.to_owned());
            entry.format = Some(format.to_owned());
            entry.compression = Some(compression.to_owned());
            entry.inbound_ports = ports.to_vec();
            entry.disks_bus = bus.map(str::to_owned);
            entry.deprecated = deprecated.map(str::to_owned);
            catalog.insert(write_entry(&entry), entry);
        }
        catalog
    }

    /// Adds one `rdf:RDF` document (a real file or a written one); returns its identifier.
    /// Rejected: unreadable entries, listings, and entries the server could never serve (no
    /// endorsement e-mail, endorsement date or `dcterms:valid`). A document with the same
    /// (identifier, e-mail, created) replaces the stored one.
    pub fn add_document(&mut self, rdf: &str) -> Result<String, MarketplaceError> {
        let (root, entries) = parse_document(rdf.as_bytes())?;
        if root != Root::Entry {
            return Err(MarketplaceError::Malformed {
                detail: "expected a single rdf:RDF document, found a <metadata> listing".to_owned(),
            });
        }
        let entry = entries.into_iter().next().unwrap_or_else(|| {
            Err(MarketplaceError::Malformed {
                detail: "no rdf:RDF entry".to_owned(),
            })
        })?;
        let identifier = entry.identifier.clone();
        if self.insert(rdf.to_owned(), entry).is_none() {
            return Err(MarketplaceError::Entry {
                reason: format!(
                    "{identifier}: no endorsement e-mail, endorsement date or dcterms:valid: a Marketplace never lists nor serves such an entry"
                ),
            });
        }
        Ok(identifier)
    }

    /// Adds `n` synthetic entries (distinct identifiers, valid until 2099, a few OS families).
    pub fn seed(&mut self, n: usize) {
        const FAMILIES: [(&str, &str, &str); 4] = [
            ("ttylinux", "9.7", "i486"),
            ("ubuntu", "14.04", "x86_64"),
            ("centos", "6.5", "x86_64"),
            ("debian", "7.8", "x86_64"),
        ];
        self.entries.reserve(n);
        for _ in 0..n {
            let number = self.synthetic;
            self.synthetic += 1;
            let (os, os_version, arch) = FAMILIES[number % FAMILIES.len()];
            let mut entry = synthetic_entry("seed", number);
            entry.title = Some(format!("synthetic-{os}-{number}"));
            entry.description = Some(format!(
                "Synthetic seeded image {number} of the local cloud (not a real image)."
            ));
            entry.os = Some(os.to_owned());
            entry.os_version = Some(os_version.to_owned());
            entry.arch = Some(arch.to_owned());
            entry.format = Some("raw".to_owned());
            entry.compression = Some("gz".to_owned());
            self.insert(write_entry(&entry), entry);
        }
    }

    /// Number of stored documents.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The latest-endorsed stored entry with this identifier, whatever its validity.
    pub fn entry(&self, identifier: &str) -> Option<&ImageEntry> {
        self.entries
            .iter()
            .filter(|s| s.entry.identifier == identifier)
            .max_by(|a, b| a.created.cmp(&b.created))
            .map(|s| &s.entry)
    }

    /// Stores a parsed document; `None` when it lacks what the server's queries require.
    fn insert(&mut self, raw: String, entry: ImageEntry) -> Option<usize> {
        let email = entry.endorser.as_ref().map(|e| e.email.clone())?;
        let created = entry.created.clone()?;
        let valid = entry.valid_until.as_deref().and_then(parse_date)?;
        if email.is_empty() {
            return None;
        }
        let group_key = (entry.identifier.clone(), email.clone());
        let key = (entry.identifier.clone(), email.clone(), created.clone());
        let stored = Stored {
            raw,
            entry,
            email,
            created,
            valid,
            latest: false,
        };
        let position = match self.coordinates.get(&key) {
            Some(&position) => {
                self.entries[position] = stored;
                position
            }
            None => {
                let position = self.entries.len();
                self.entries.push(stored);
                self.coordinates.insert(key, position);
                self.groups
                    .entry(group_key.clone())
                    .or_default()
                    .push(position);
                position
            }
        };
        if let Some(members) = self.groups.get(&group_key) {
            let newest = members
                .iter()
                .copied()
                .max_by(|&a, &b| self.entries[a].created.cmp(&self.entries[b].created));
            for &m in members {
                self.entries[m].latest = Some(m) == newest;
            }
        }
        *self.cache.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        Some(position)
    }

    /// Answers a request. `path` starts at `/metadata`; `query` is the raw query string;
    /// `now_unix` is the clock validity is judged by.
    pub fn handle(
        &self,
        method: &str,
        path: &str,
        query: &str,
        accept: Option<&str>,
        now_unix: i64,
    ) -> Reply {
        let params = Params::parse(query);
        let media = match params.media.as_deref() {
            Some("json") => Media::Json,
            Some("xml") => Media::Xml,
            _ => preferred_media(accept),
        };
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        if segments.first().map(String::as_str) != Some("metadata") {
            return error_reply(404, "not found", media);
        }
        if method != "GET" && method != "HEAD" {
            return error_reply(405, "method not allowed", media).with_header("Allow", "GET, HEAD");
        }
        match &segments[1..] {
            [identifier, email, created] => self.single(identifier, email, created, media),
            args if args.len() <= 2 => {
                let mut params = params;
                for arg in args {
                    params.add_filter(arg);
                }
                self.listing(&params, media, now_unix)
            }
            _ => error_reply(404, "not found", media),
        }
    }

    fn single(&self, identifier: &str, email: &str, created: &str, media: Media) -> Reply {
        let key = (identifier.to_owned(), email.to_owned(), created.to_owned());
        match self.coordinates.get(&key) {
            Some(&position) => Reply::new(
                200,
                "application/rdf+xml",
                self.entries[position].raw.as_bytes(),
            )
            .with_header(
                "Content-Disposition",
                &format!("attachment; filename={identifier}.xml"),
            ),
            None => error_reply(404, ENTRY_NOT_FOUND, media),
        }
    }

    /// Positions of the entries a listing selects, before DataTables searching.
    fn select(&self, params: &Params, now_unix: i64, with_filters: bool) -> Vec<usize> {
        let has_date = params
            .filters
            .iter()
            .any(|f| matches!(f, Filter::Created(_)));
        let status = params.status.as_deref().unwrap_or("valid");
        let location = params.location.as_deref().unwrap_or("all");
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                if with_filters && !params.filters.iter().all(|f| f.matches(s)) {
                    return false;
                }
                if !(s.latest || (with_filters && has_date)) {
                    return false;
                }
                let deprecated = s.entry.deprecated.is_some();
                let status_ok = match status {
                    "valid" => s.valid > now_unix && !deprecated,
                    "expired" => s.valid < now_unix && !deprecated,
                    "deprecated" => deprecated,
                    _ => true,
                };
                let locations = &s.entry.locations;
                let location_ok = !with_filters
                    || match location {
                        "pdisk" => locations.iter().any(|l| l.starts_with("pdisk")),
                        "web" => {
                            locations.is_empty()
                                || locations.iter().any(|l| {
                                    ["http://", "https://", "ftp://"]
                                        .iter()
                                        .any(|p| l.starts_with(p))
                                })
                        }
                        _ => true,
                    };
                status_ok && location_ok
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn listing(&self, params: &Params, media: Media, now_unix: i64) -> Reply {
        let selected = self.select(params, now_unix, true);
        if media == Media::Json {
            return self.json_listing(params, selected, now_unix);
        }
        if selected.is_empty() && params.has_filter_args {
            return error_reply(404, NO_MATCH, media);
        }
        let body = self.render_xml(selected);
        Reply::new(200, "application/xml", body)
    }

    /// The XML listing of the selected entries, from the cache when the selection is unchanged.
    fn render_xml(&self, selected: Vec<usize>) -> Vec<u8> {
        let mut guard = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((positions, body)) = guard.as_ref() {
            if *positions == selected {
                return body.clone();
            }
        }
        let docs: Vec<&str> = selected
            .iter()
            .map(|&i| self.entries[i].raw.as_str())
            .collect();
        let body = write_listing(&docs).into_bytes();
        *guard = Some((selected, body.clone()));
        body
    }

    fn json_listing(&self, params: &Params, selected: Vec<usize>, now_unix: i64) -> Reply {
        let words: Vec<&str> = params
            .search
            .as_deref()
            .map(|s| s.split(' ').filter(|w| !w.is_empty()).collect())
            .unwrap_or_default();
        let mut rows: Vec<[&str; 11]> = selected
            .iter()
            .map(|&i| columns(&self.entries[i]))
            .filter(|row| {
                words
                    .iter()
                    .all(|w| row[1..].iter().any(|c| contains_ignore_case(c, w)))
                    && (1..=5).all(|c| match params.column_search[c].as_deref() {
                        Some(w) if !w.is_empty() => contains_ignore_case(row[c], w),
                        _ => true,
                    })
            })
            .collect();
        let total_display = rows.len();
        if let (Some(start), Some(length)) = (&params.display_start, &params.display_length) {
            let column = params
                .sort_column
                .as_deref()
                .and_then(|c| c.parse::<usize>().ok())
                .filter(|&c| c < 11)
                .unwrap_or(6);
            rows.sort_by(|a, b| a[column].cmp(b[column]));
            if params.sort_direction.as_deref() == Some("desc") {
                rows.reverse();
            }
            let start = start.parse::<usize>().unwrap_or(0).min(rows.len());
            let end = match length.parse::<i64>() {
                Ok(n) if n >= 0 => start.saturating_add(n as usize).min(rows.len()),
                _ => rows.len(),
            };
            rows = rows[start..end].to_vec();
        }
        let unfiltered = Params {
            status: params.status.clone(),
            ..Params::default()
        };
        let total = self.select(&unfiltered, now_unix, false).len();
        let message = if total_display == 0 && params.has_filter_args {
            NO_MATCH
        } else {
            ""
        };
        let body = serde_json::json!({
            "sEcho": params.echo,
            "iTotalRecords": total,
            "iTotalDisplayRecords": total_display,
            "rMsg": message,
            "aaData": rows,
        });
        Reply::new(200, "application/json", body.to_string())
    }
}

/// A synthetic entry whose identifier is the SHA-1 of `"<name>-<number>"` (written as the
/// image's checksum too, so the identifier matches it).
fn synthetic_entry(name: &str, number: usize) -> ImageEntry {
    let digest = Sha1::digest(format!(
        "stratuslab-libcloud synthetic image {name}-{number}"
    ));
    let sha1: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let identifier = sha1_hex_to_identifier(&sha1).unwrap_or_default();
    ImageEntry {
        locations: vec![format!(
            "https://appliances.localcloud.invalid/images/{identifier}.img.gz"
        )],
        identifier,
        bytes: Some(1_073_741_824),
        checksums: vec![("SHA-1".to_owned(), sha1)],
        endorser: Some(Endorser {
            email: SYNTHETIC_EMAIL.to_owned(),
            subject: "CN=Synthetic Endorser,OU=Local Cloud,O=stratuslab-libcloud".to_owned(),
            issuer: "CN=Synthetic Endorser,OU=Local Cloud,O=stratuslab-libcloud".to_owned(),
        }),
        created: Some(SYNTHETIC_CREATED.to_owned()),
        valid_until: Some(SYNTHETIC_VALID_UNTIL.to_owned()),
        image_type: Some("base".to_owned()),
        kind: Some("machine".to_owned()),
        version: Some("1.0".to_owned()),
        hypervisor: Some("kvm".to_owned()),
        publisher: Some("StratusLab".to_owned()),
        creator: Some("stratuslab-libcloud local cloud".to_owned()),
        ..ImageEntry::default()
    }
}
