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
        if best.is_none_or(|(bq, _)| q > bq) {
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
        let base = |os: &str, os_version: &str, arch: &str| {
            let mut entry = synthetic_entry(&format!("{os}-{os_version}-{arch}"), 0);
            entry.title = Some(format!("{os}-{os_version}-{arch}-base"));
            entry.description = Some(format!(
                "Synthetic {os} {os_version} {arch} base image of the stratuslab-libcloud local cloud (not a real image)."
            ));
            entry.os = Some(os.to_owned());
            entry.os_version = Some(os_version.to_owned());
            entry.arch = Some(arch.to_owned());
            entry.format = Some("raw".to_owned());
            entry.compression = Some("gz".to_owned());
            entry
        };
        let ttylinux = base("ttylinux", "9.7", "i486");
        let mut ubuntu = base("ubuntu", "14.04", "x86_64");
        ubuntu.format = Some("qcow2".to_owned());
        let mut centos = base("centos", "6.5", "x86_64");
        centos.inbound_ports = vec![22, 80, 443];
        let mut debian = base("debian", "7.8", "x86_64");
        debian.compression = Some("bz2".to_owned());
        debian.inbound_ports = vec![22];
        debian.disks_bus = Some("virtio".to_owned());
        let mut fedora = base("fedora", "14", "i386");
        fedora.deprecated = Some("Synthetic deprecation: superseded".to_owned());
        for entry in [ttylinux, ubuntu, centos, debian, fedora] {
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
    /// `now_unix` is the clock validity is judged by. HEAD is answered like GET (the HTTP layer
    /// drops the body); other methods get 405.
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
                bytes::Bytes::copy_from_slice(self.entries[position].raw.as_bytes()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marketplace::{parse_entry, parse_listing};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/marketplace");
    const XML: Option<&str> = Some("application/xml");
    const JANE: &str = "jane.tester@example.org";
    const BEE8: &str = "BEE8-MMAw-Lk_IgsEExAy3d9R8h";

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap()
    }

    fn date(s: &str) -> i64 {
        parse_date(s).unwrap()
    }

    /// (identifier, endorsement date) of each entry of an XML listing reply.
    fn listed(reply: &Reply) -> Vec<(String, String)> {
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.content_type, "application/xml");
        parse_listing(&reply.body)
            .unwrap()
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                (e.identifier, e.created.unwrap_or_default())
            })
            .collect()
    }

    fn get(catalog: &Catalog, path: &str, query: &str, now: &str) -> Reply {
        catalog.handle("GET", path, query, XML, date(now))
    }

    /// The five BEE8 versions of jane.tester (server tests), latest = two-locations.
    fn bee8_catalog() -> Catalog {
        let mut c = Catalog::new();
        for f in [
            "valid-indate-signature.xml",
            "valid-indate-newer-signature.xml",
            "valid-indate-older-signature.xml",
            "valid-two-locations.xml",
            "valid-expired-signature.xml",
        ] {
            c.add_document(&fixture(&format!("server-tests/{f}")))
                .unwrap();
        }
        c
    }

    const NO_MATCH_XML: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?><error>no metadata matching query found</error>"#;

    #[test]
    fn loads_every_real_fixture_that_a_marketplace_can_serve() {
        let mut accepted = Vec::new();
        let mut refused = 0;
        for sub in [
            "client-resources",
            "client-tests",
            "metadata-lib",
            "server-tests",
        ] {
            for file in std::fs::read_dir(format!("{FIXTURES}/{sub}")).unwrap() {
                let path = file.unwrap().path();
                let name = format!("{sub}/{}", path.file_name().unwrap().to_str().unwrap());
                let mut catalog = Catalog::new();
                match catalog.add_document(&std::fs::read_to_string(&path).unwrap()) {
                    Ok(id) => {
                        assert_eq!(catalog.len(), 1);
                        accepted.push(format!("{name} {id}"));
                    }
                    Err(_) => {
                        assert!(catalog.is_empty());
                        refused += 1;
                    }
                }
            }
        }
        accepted.sort();
        assert_eq!(
            accepted,
            [
                "client-resources/manifest-invalid-sha1.xml JcqGhHxmTRAEpHMmRF-xhSTM3TO",
                "client-tests/hackers-full.xml MMZu9WvwKIro-rtBQfDk4PsKO7_",
                "metadata-lib/partial-multiple-signatures.xml MMZu9WvwKIro-rtBQfDk4PsKO7_",
                "metadata-lib/valid-ca-signed.xml BEE8-MMAw-Lk_IgsEExAy3d9R8h",
                "metadata-lib/valid-full-alt-cimi.xml MMZu9WvwKIro-rtBQfDk4PsKO7_",
                "metadata-lib/valid-full-signature.xml MMZu9WvwKIro-rtBQfDk4PsKO7_",
                "metadata-lib/valid-full.xml MMZu9WvwKIro-rtBQfDk4PsKO7_",
                "server-tests/invalid-special-characters-signature.xml BEE8-MMAw-Lk_IgsEExAy3d9R8h",
                "server-tests/valid-alternative-deprecated-signed.xml BEE8-MMAw-Lk_IgsEExAy3d9R8h",
                "server-tests/valid-alternative-newid.xml F49uQGH1uwT4mG9Lqj2pYnWkApd",
                "server-tests/valid-alternative.xml BEE8-MMAw-Lk_IgsEExAy3d9R8h",
                "server-tests/valid-ca-signed.xml BEE8-MMAw-Lk_IgsEExAy3d9R8h",
                "server-tests/valid-expired-signature.xml Ce3uQbAaxJMbTBaCXWO2FZPRFTT",
                "server-tests/valid-indate-deprecated-signature.xml BEE8-MMAw-Lk_IgsEExAy3d9R8h",
                "server-tests/valid-indate-newer-signature.xml BEE8-MMAw-Lk_IgsEExAy3d9R8h",
                "server-tests/valid-indate-older-signature.xml BEE8-MMAw-Lk_IgsEExAy3d9R8h",
                "server-tests/valid-indate-signature.xml BEE8-MMAw-Lk_IgsEExAy3d9R8h",
                "server-tests/valid-two-locations.xml BEE8-MMAw-Lk_IgsEExAy3d9R8h",
            ]
        );
        assert_eq!(refused, 60 - 18);
    }

    #[test]
    fn refusals_say_why() {
        let mut c = Catalog::new();
        let err = c
            .add_document(&fixture("server-tests/valid.xml"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid Marketplace entry: BEE8-MMAw-Lk_IgsEExAy3d9R8h: no endorsement e-mail, endorsement date or dcterms:valid: a Marketplace never lists nor serves such an entry"
        );
        let err = c
            .add_document(&fixture("client-tests/valid-single-entry.xml"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed Marketplace document: expected a single rdf:RDF document, found a <metadata> listing"
        );
        assert!(c.add_document("<not-xml").is_err());
        assert!(c.is_empty());
    }

    /// Every real sample's dcterms:valid is in the past: before it, it lists; after it, it does not.
    #[test]
    fn injected_clock_decides_validity() {
        for f in [
            "client-resources/manifest-invalid-sha1.xml",
            "server-tests/valid-two-locations.xml",
            "server-tests/valid-alternative-newid.xml",
            "server-tests/valid-expired-signature.xml",
            "metadata-lib/valid-ca-signed.xml",
        ] {
            let raw = fixture(f);
            let entry = parse_entry(raw.as_bytes()).unwrap();
            let valid = date(entry.valid_until.as_deref().unwrap());
            let mut c = Catalog::new();
            c.add_document(&raw).unwrap();
            let before = c.handle("GET", "/metadata", "", XML, valid - 1);
            assert_eq!(
                listed(&before),
                [(entry.identifier.clone(), entry.created.clone().unwrap())],
                "{f}"
            );
            let after = c.handle("GET", "/metadata", "", XML, valid + 1);
            assert_eq!(listed(&after), [], "{f}");
            let expired = c.handle("GET", "/metadata", "status=expired", XML, valid + 1);
            assert_eq!(listed(&expired).len(), 1, "{f}");
            // The client's pre-launch check (listing by identifier) fails once expired.
            let by_id = c.handle(
                "GET",
                &format!("/metadata/{}", entry.identifier),
                "",
                XML,
                valid + 1,
            );
            assert_eq!(by_id.status, 404, "{f}");
        }
    }

    #[test]
    fn deprecated_entries_only_under_status_deprecated() {
        let mut c = Catalog::new();
        c.add_document(&fixture(
            "server-tests/valid-indate-deprecated-signature.xml",
        ))
        .unwrap();
        let now = "2015-01-01T00:00:00Z";
        assert_eq!(listed(&get(&c, "/metadata", "", now)), []);
        assert_eq!(
            listed(&get(
                &c,
                "/metadata",
                "status=expired",
                "2017-01-01T00:00:00Z"
            )),
            []
        );
        let expected = [(BEE8.to_owned(), "2014-03-08T14:10:17Z".to_owned())];
        assert_eq!(
            listed(&get(&c, "/metadata", "status=deprecated", now)),
            expected
        );
        assert_eq!(listed(&get(&c, "/metadata", "status=all", now)), expected);
        assert_eq!(
            listed(&get(&c, "/metadata", "status=anything", now)),
            expected
        );
    }

    #[test]
    fn only_the_latest_version_unless_a_date_is_given() {
        let c = bee8_catalog();
        let now = "2015-01-01T00:00:00Z";
        let latest = [(BEE8.to_owned(), "2014-03-08T14:28:15Z".to_owned())];
        assert_eq!(listed(&get(&c, "/metadata", "", now)), latest);
        // Status "all" still lists only latest versions (and the expired Ce3u entry).
        assert_eq!(
            listed(&get(&c, "/metadata", "status=all", now)),
            [
                (BEE8.to_owned(), "2014-03-08T14:28:15Z".to_owned()),
                (
                    "Ce3uQbAaxJMbTBaCXWO2FZPRFTT".to_owned(),
                    "2011-09-12T11:23:44Z".to_owned()
                ),
            ]
        );
        // A created filter selects that version, latest or not (still subject to status).
        let newer = [(BEE8.to_owned(), "2014-03-08T14:23:18Z".to_owned())];
        assert_eq!(
            listed(&get(&c, "/metadata", "created=2014-03-08T14:23:18Z", now)),
            newer
        );
        assert_eq!(
            listed(&get(
                &c,
                &format!("/metadata/{BEE8}/2014-03-08T14:23:18Z"),
                "",
                now
            )),
            newer
        );
        let older = get(&c, "/metadata", "created=2014-03-08T14:15:05Z", now);
        assert_eq!(
            (older.status, &older.body[..]),
            (404, NO_MATCH_XML.as_bytes())
        );
        assert_eq!(
            listed(&get(
                &c,
                "/metadata",
                "created=2014-03-08T14:15:05Z&status=expired",
                now
            )),
            [(BEE8.to_owned(), "2014-03-08T14:15:05Z".to_owned())]
        );
    }

    #[test]
    fn filters_as_query_parameters_and_path_arguments() {
        let mut c = bee8_catalog();
        c.add_document(&fixture("client-resources/manifest-invalid-sha1.xml"))
            .unwrap();
        let now = "2015-01-01T00:00:00Z";
        let bee8 = vec![(BEE8.to_owned(), "2014-03-08T14:28:15Z".to_owned())];
        let cern = vec![(
            "JcqGhHxmTRAEpHMmRF-xhSTM3TO".to_owned(),
            "2012-09-13T13:13:38Z".to_owned(),
        )];
        let both = [bee8.clone(), cern.clone()].concat();
        assert_eq!(listed(&get(&c, "/metadata", "", now)), both);
        assert_eq!(listed(&get(&c, "/metadata/", "", now)), both);
        for (path, query, expected) in [
            ("/metadata", format!("identifier={BEE8}"), &bee8),
            ("/metadata", format!("email={JANE}"), &bee8),
            (
                "/metadata",
                "email=Konstantin.Skaburskas%40cern.ch".to_owned(),
                &cern,
            ),
            (&format!("/metadata/{BEE8}") as &str, String::new(), &bee8),
            (&format!("/metadata/{BEE8}/") as &str, String::new(), &bee8),
            (&format!("/metadata/{JANE}") as &str, String::new(), &bee8),
            (
                &format!("/metadata/{BEE8}/{JANE}") as &str,
                String::new(),
                &bee8,
            ),
            (
                &format!("/metadata//{JANE}/{BEE8}") as &str,
                String::new(),
                &bee8,
            ),
            ("/metadata/jane.tester%40example.org", String::new(), &bee8),
            // Values are classified by shape, whatever the parameter's name.
            ("/metadata", format!("identifier={JANE}"), &bee8),
            // Empty values are ignored.
            ("/metadata", "identifier=&email=".to_owned(), &both),
        ] {
            assert_eq!(
                &listed(&get(&c, path, &query, now)),
                expected,
                "{path}?{query}"
            );
        }
        for (path, query) in [
            (
                "/metadata",
                format!("identifier={BEE8}&email=Konstantin.Skaburskas@cern.ch"),
            ),
            ("/metadata/AAAAAAAAAAAAAAAAAAAAAAAAAAA", String::new()),
            ("/metadata", "email=nobody@example.org".to_owned()),
        ] {
            let reply = get(&c, path, &query, now);
            assert_eq!(reply.status, 404, "{path}?{query}");
            assert_eq!(reply.content_type, "application/xml");
            assert_eq!(reply.body, NO_MATCH_XML.as_bytes());
        }
    }

    #[test]
    fn location_filter() {
        let mut c = Catalog::new();
        let mut ids = Vec::new();
        for (i, locations) in [
            vec!["pdisk:onehost-7.lal.in2p3.fr:8445:38a0738e"],
            vec!["http://appliances.example.org/a.img.gz"],
            vec!["ftp://appliances.example.org/b.img.gz"],
            vec![],
        ]
        .into_iter()
        .enumerate()
        {
            let mut entry = synthetic_entry("location", i);
            entry.locations = locations.into_iter().map(str::to_owned).collect();
            ids.push(entry.identifier.clone());
            c.add_document(&write_entry(&entry)).unwrap();
        }
        let now = "2020-01-01T00:00:00Z";
        let ids_of =
            |reply: Reply| -> Vec<String> { listed(&reply).into_iter().map(|(i, _)| i).collect() };
        assert_eq!(
            ids_of(get(&c, "/metadata", "location=pdisk", now)),
            [ids[0].clone()]
        );
        assert_eq!(
            ids_of(get(&c, "/metadata", "location=web", now)),
            ids[1..].to_vec()
        );
        assert_eq!(ids_of(get(&c, "/metadata", "location=all", now)), ids);
        assert_eq!(ids_of(get(&c, "/metadata", "", now)), ids);
    }

    #[test]
    fn unfiltered_empty_listing_is_an_empty_wrapper() {
        let c = Catalog::new();
        let reply = get(&c, "/metadata", "", "2020-01-01T00:00:00Z");
        assert_eq!(reply.status, 200);
        assert_eq!(
            &reply.body[..],
            b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?><metadata></metadata>"
        );
        // Status alone is not a filter: still 200.
        assert_eq!(
            get(&c, "/metadata", "status=expired", "2020-01-01T00:00:00Z").status,
            200
        );
    }

    #[test]
    fn single_entry_whatever_its_validity() {
        let c = bee8_catalog();
        let raw = fixture("server-tests/valid-indate-older-signature.xml");
        let path = format!("/metadata/{BEE8}/{JANE}/2014-03-08T14:15:05Z");
        let reply = c.handle("GET", &path, "", XML, date("2030-01-01T00:00:00Z"));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_type, "application/rdf+xml");
        assert_eq!(
            reply.headers,
            [(
                "Content-Disposition".to_owned(),
                format!("attachment; filename={BEE8}.xml")
            )]
        );
        assert_eq!(reply.body, raw.as_bytes());
        // Trailing slash and an encoded '@' reach it too.
        let encoded = format!("/metadata/{BEE8}/jane.tester%40example.org/2014-03-08T14:15:05Z/");
        assert_eq!(c.handle("GET", &encoded, "", None, 0).body, raw.as_bytes());
    }

    #[test]
    fn single_entry_not_found_in_every_error_form() {
        let c = bee8_catalog();
        let path = format!("/metadata/{BEE8}/{JANE}/2000-01-01T00:00:00Z");
        let xml = c.handle("GET", &path, "", Some("application/xml"), 0);
        assert_eq!(
            (xml.status, xml.content_type.as_str()),
            (404, "application/xml")
        );
        assert_eq!(
            &xml.body[..],
            b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?><error>metadata entry not found.\n</error>"
        );
        let json = c.handle("GET", &path, "", Some("application/json"), 0);
        assert_eq!(
            (json.status, json.content_type.as_str()),
            (404, "application/json")
        );
        assert_eq!(&json.body[..], br#"{"404":"metadata entry not found.\n"}"#);
        let html = c.handle("GET", &path, "", Some("text/html,application/xml;q=0.9"), 0);
        assert_eq!(
            (html.status, html.content_type.as_str()),
            (404, "text/html; charset=UTF-8")
        );
        let xml_preferred = c.handle("GET", &path, "", Some("text/html;q=0.5, text/xml"), 0);
        assert_eq!(xml_preferred.content_type, "application/xml");
    }

    #[test]
    fn other_methods_and_paths() {
        let c = Catalog::with_default_entries();
        let post = c.handle("POST", "/metadata", "", XML, 0);
        assert_eq!(post.status, 405);
        assert_eq!(post.headers, [("Allow".to_owned(), "GET, HEAD".to_owned())]);
        assert_eq!(c.handle("GET", "/endorsers", "", XML, 0).status, 404);
        assert_eq!(c.handle("GET", "/metadata/a/b/c/d", "", XML, 0).status, 404);
    }

    #[test]
    fn json_form() {
        let mut c = Catalog::new();
        c.add_document(&fixture("client-resources/manifest-invalid-sha1.xml"))
            .unwrap();
        let now = date("2015-01-01T00:00:00Z");
        let expected = serde_json::json!({
            "sEcho": 3,
            "iTotalRecords": 1,
            "iTotalDisplayRecords": 1,
            "rMsg": "",
            "aaData": [[
                "", "fedora", "14", "i386", "Konstantin.Skaburskas@cern.ch", "machine",
                "2012-09-13T13:13:38Z", "JcqGhHxmTRAEpHMmRF-xhSTM3TO",
                "http://appliances.stratuslab.eu/images/base/ttylinux-9.7-i486-base/1.4/ttylinux-9.7-i486-base-1.4.qcow.gz",
                "dummy manifest to test sha1 mismatch.", ""
            ]]
        });
        for (query, accept) in [
            ("media=json&sEcho=3", XML),
            ("sEcho=3", Some("application/json")),
        ] {
            let reply = c.handle("GET", "/metadata", query, accept, now);
            assert_eq!(
                (reply.status, reply.content_type.as_str()),
                (200, "application/json")
            );
            let got: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(got, expected);
        }
        // An unmatched JSON query still answers 200.
        let reply = c.handle("GET", "/metadata", "media=json&email=x@y.org", None, now);
        let got: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(
            got,
            serde_json::json!({"sEcho": 0, "iTotalRecords": 1, "iTotalDisplayRecords": 0,
                "rMsg": "no metadata matching query found", "aaData": []})
        );
    }

    #[test]
    fn json_search_sort_and_paging() {
        let c = Catalog::with_default_entries();
        let now = date("2020-01-01T00:00:00Z");
        let rows = |query: &str| -> (u64, u64, Vec<String>) {
            let reply = c.handle(
                "GET",
                "/metadata",
                &format!("media=json&{query}"),
                None,
                now,
            );
            let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            let titles = v["aaData"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[1].as_str().unwrap().to_owned())
                .collect();
            (
                v["iTotalRecords"].as_u64().unwrap(),
                v["iTotalDisplayRecords"].as_u64().unwrap(),
                titles,
            )
        };
        assert_eq!(
            rows(""),
            (
                4,
                4,
                ["ttylinux", "ubuntu", "centos", "debian"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(
            rows("sSearch=X86_64 cent"),
            (4, 1, vec!["centos".to_owned()])
        );
        assert_eq!(rows("sSearch_3=i486"), (4, 1, vec!["ttylinux".to_owned()]));
        assert_eq!(
            rows("iDisplayStart=1&iDisplayLength=2&iSortCol_0=1&sSortDir_0=asc"),
            (4, 4, vec!["debian".to_owned(), "ttylinux".to_owned()])
        );
        assert_eq!(
            rows("iDisplayStart=0&iDisplayLength=-1&iSortCol_0=1&sSortDir_0=desc"),
            (
                4,
                4,
                ["ubuntu", "ttylinux", "debian", "centos"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(rows("status=deprecated"), (1, 1, vec!["fedora".to_owned()]));
    }

    #[test]
    fn default_entries_are_synthetic_and_consistent() {
        let c = Catalog::with_default_entries();
        assert_eq!(c.len(), 5);
        let reply = c.handle(
            "GET",
            "/metadata",
            "status=all",
            XML,
            date("2020-01-01T00:00:00Z"),
        );
        let entries: Vec<ImageEntry> = parse_listing(&reply.body)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(entries.len(), 5);
        for e in &entries {
            assert!(e.description.as_deref().unwrap().starts_with("Synthetic "));
            assert!(!e.identifier_mismatch);
            assert_eq!(e.valid_until.as_deref(), Some(SYNTHETIC_VALID_UNTIL));
            assert_eq!(c.entry(&e.identifier), Some(e));
        }
        let by_os = |os: &str| {
            entries
                .iter()
                .find(|e| e.os.as_deref() == Some(os))
                .unwrap()
        };
        assert_eq!(by_os("ubuntu").format.as_deref(), Some("qcow2"));
        assert_eq!(by_os("centos").inbound_ports, [22, 80, 443]);
        assert_eq!(by_os("debian").disks_bus.as_deref(), Some("virtio"));
        assert!(by_os("fedora").deprecated.is_some());
        assert!(String::from_utf8_lossy(&reply.body).contains("<!-- Synthetic entry"));
    }

    #[test]
    fn seeding_and_cached_listing() {
        let mut c = Catalog::with_default_entries();
        let start = std::time::Instant::now();
        c.seed(5000);
        let seeding = start.elapsed();
        assert_eq!(c.len(), 5005);
        c.seed(2);
        assert_eq!(c.len(), 5007, "new seeds get new identifiers");
        let now = date("2020-01-01T00:00:00Z");
        let first = c.handle("GET", "/metadata", "", XML, now);
        let start = std::time::Instant::now();
        let second = c.handle("GET", "/metadata", "", XML, now);
        let cached = start.elapsed();
        assert_eq!(first, second);
        assert_eq!(listed(&first).len(), 5006);
        // Debug-build bounds; release is far below.
        assert!(seeding < std::time::Duration::from_secs(5), "{seeding:?}");
        assert!(cached < std::time::Duration::from_secs(1), "{cached:?}");
        // The cache follows the catalog.
        c.seed(1);
        assert_eq!(
            listed(&c.handle("GET", "/metadata", "", XML, now)).len(),
            5007
        );
    }

    #[test]
    fn replacing_the_same_coordinates() {
        let mut c = Catalog::new();
        let raw = fixture("server-tests/valid-two-locations.xml");
        c.add_document(&raw).unwrap();
        c.add_document(&raw).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c.entry(BEE8).unwrap().locations.len(), 2);
    }
}
