//! Fast path of the RDF/XML reader: a purpose-built scanner for the documents the Marketplace
//! writes, feeding the same [`Parser`] as quick-xml's [`NsReader`] does in [`super::read`].
//!
//! It reads what Marketplace listings and entries hold (elements, attributes, text with the
//! five predefined entities and character references, CDATA, comments, an XML declaration, the
//! XML-DSig signature's default-namespace forms) and gives up — `None`, so that the caller reads
//! the document with quick-xml — on anything else or anything it is not sure of: prefixed
//! namespace declarations other than the four canonical ones (`rdf`, `dcterms`, `slterms`,
//! `slreq`, bound to their URIs) on an entry's `rdf:RDF`, an unbound prefix, an empty default
//! namespace, DOCTYPE, a processing instruction after the start, attribute syntax beyond
//! `name="value"`, a value the reader asks for that holds references or white space needing
//! normalization, an end tag that does not match (or carries white space), a reference that does
//! not close, non-white-space text outside the root, any error the parser reports, an
//! incomplete document. So when it answers, the answer is the one quick-xml's read gives (the
//! property tests below compare the two on real, mutated and spliced documents).
//!
//! Namespaces: an element `p:local` resolves through the four canonical bindings declared on
//! the entry's `rdf:RDF` (the only prefixed declarations accepted); an unprefixed one through
//! the nearest `xmlns="…"` of its open ancestors (or itself), else to no namespace. Inside an
//! ignored subtree (which quick-xml skips with `read_to_end`, without resolving names) only the
//! syntax is checked and end tags matched.

use memchr::{memchr, memchr3, memmem};
use quick_xml::events::BytesRef;

use super::{classify_uri, Ctx, ImageEntry, MarketplaceError, Ns, Parser, Root, StartTag};

/// Result of a whole read.
type Read = (Root, Vec<Result<ImageEntry, MarketplaceError>>);

/// Reads `text` like [`super::read`] does, or `None` (then read it with quick-xml).
pub(super) fn read(text: &str, inside: bool) -> Option<Read> {
    let mut scanner = Scanner {
        s: text,
        b: text.as_bytes(),
        pos: 0,
        parser: Parser::new(text.len(), inside),
        open: Vec::with_capacity(16),
        bound: Vec::with_capacity(8),
        bound_depth: 0,
        attrs: Vec::with_capacity(8),
        skip: Vec::with_capacity(16),
    };
    scanner.run()?;
    scanner.parser.finish(inside).ok()
}

/// An open element (outside ignored subtrees).
struct Open<'a> {
    name: &'a str,
    /// The default namespace in scope inside it.
    default: Ns,
}

struct Scanner<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    parser: Parser,
    open: Vec<Open<'a>>,
    /// The prefixes bound by the entry's `rdf:RDF`, in order of declaration.
    bound: Vec<(&'a str, Ns)>,
    /// `open.len()` once that `rdf:RDF` is open (its bindings end when it closes).
    bound_depth: usize,
    /// The attributes of the last start tag: (name, raw value).
    attrs: Vec<(&'a str, &'a str)>,
    /// Open elements of an ignored subtree.
    skip: Vec<&'a str>,
}

/// A start tag as the fast path read it.
struct FastTag<'t, 'a> {
    name: &'a str,
    attrs: &'t [(&'a str, &'a str)],
    /// The prefixes bound on this element.
    bound: &'t [(&'a str, Ns)],
}

/// `prefix:local` split at its first colon (names are short: no searcher set up).
fn split_colon(name: &str) -> Option<(&str, &str)> {
    let i = name.bytes().position(|b| b == b':')?;
    Some((&name[..i], &name[i + 1..]))
}

/// The namespace of `prefix` (the last binding wins, as in quick-xml); `None` if unbound.
fn resolve(bound: &[(&str, Ns)], prefix: &str) -> Option<Ns> {
    bound
        .iter()
        .rev()
        .find(|(p, _)| *p == prefix)
        .map(|(_, ns)| *ns)
}

/// Marks a value the fast path does not handle: the read is abandoned (never returned).
fn unsupported() -> MarketplaceError {
    MarketplaceError::Malformed {
        detail: "fast path: unsupported".to_owned(),
    }
}

impl StartTag for FastTag<'_, '_> {
    fn qname(&self) -> &str {
        self.name
    }

    fn rdf_attribute(&self, name: &str) -> Result<Option<String>, MarketplaceError> {
        for (key, value) in self.attrs {
            let Some((prefix, local)) = split_colon(key) else {
                continue;
            };
            // `xml:` and `xmlns:` attributes are in their own namespaces, an unbound prefix in
            // none we know.
            if local == name && resolve(self.bound, prefix) == Some(Ns::Rdf) {
                // quick-xml unescapes and turns \t \n \r into spaces: not done here.
                if value
                    .bytes()
                    .any(|b| matches!(b, b'&' | b'\t' | b'\n' | b'\r'))
                {
                    return Err(unsupported());
                }
                return Ok(Some((*value).to_owned()));
            }
        }
        Ok(None)
    }
}

/// Bytes the fast path accepts in names: `A-Z a-z 0-9 _ - . :`.
static NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':');
        b += 1;
    }
    table
};

fn is_name_byte(b: u8) -> bool {
    NAME_BYTES[usize::from(b)]
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// What a start tag was.
#[derive(PartialEq, Eq)]
enum TagEnd {
    Open,
    Empty,
}

impl<'a> Scanner<'a> {
    fn run(&mut self) -> Option<()> {
        let b = self.b;
        loop {
            let Some(lt) = memchr(b'<', &b[self.pos..]) else {
                let end = b.len();
                self.text(self.pos, end)?;
                self.pos = end;
                return Some(());
            };
            let lt = self.pos + lt;
            if lt > self.pos {
                self.text(self.pos, lt)?;
            }
            self.pos = lt;
            match b.get(lt + 1)? {
                b'/' => self.end_tag()?,
                b'!' => {
                    if b[lt..].starts_with(b"<!--") {
                        self.comment()?;
                    } else if b[lt..].starts_with(b"<![CDATA[") {
                        let (from, to) = self.cdata()?;
                        if self.parser.stack.is_empty() {
                            return None;
                        }
                        if self.parser.in_field() {
                            push_text(&mut self.parser.text, &self.s[from..to]);
                        }
                    } else {
                        return None;
                    }
                }
                b'?' => {
                    // Only an XML declaration at the very start.
                    if lt != 0 || !b[lt..].starts_with(b"<?xml ") {
                        return None;
                    }
                    let end = memmem::find(&b[lt + 2..], b"?>")?;
                    self.pos = lt + 2 + end + 2;
                }
                _ => self.start_tag()?,
            }
        }
    }

    /// Text between markup at `from..to` (no `<` in it).
    fn text(&mut self, from: usize, to: usize) -> Option<()> {
        let seg = &self.s[from..to];
        if self.parser.stack.is_empty() {
            // Outside the root: white space only.
            return seg.bytes().all(is_space).then_some(());
        }
        if self.parser.in_field() {
            let mut rest = seg;
            while let Some(amp) = memchr(b'&', rest.as_bytes()) {
                push_text(&mut self.parser.text, &rest[..amp]);
                let after = &rest[amp + 1..];
                let semi = reference_end(after)?;
                self.parser.reference(&BytesRef::new(&after[..semi]));
                rest = &after[semi + 1..];
            }
            push_text(&mut self.parser.text, rest);
            Some(())
        } else {
            check_references(seg)
        }
    }

    /// A comment at `pos`: skipped.
    fn comment(&mut self) -> Option<()> {
        let end = memmem::find(&self.b[self.pos + 4..], b"-->")?;
        self.pos += 4 + end + 3;
        Some(())
    }

    /// A CDATA section at `pos`: the range of its content.
    fn cdata(&mut self) -> Option<(usize, usize)> {
        let from = self.pos + 9;
        let end = memmem::find(&self.b[from..], b"]]>")?;
        self.pos = from + end + 3;
        Some((from, from + end))
    }

    /// Reads the start tag at `pos` (name and attributes into `attrs`), leaving `pos` after it.
    fn tag(&mut self) -> Option<(&'a str, TagEnd)> {
        let b = self.b;
        let start = self.pos + 1;
        let mut i = start;
        while i < b.len() && is_name_byte(b[i]) {
            i += 1;
        }
        let name = self.s.get(start..i)?;
        if name.is_empty() {
            return None;
        }
        self.attrs.clear();
        loop {
            let spaced = i < b.len() && is_space(b[i]);
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            match *b.get(i)? {
                b'>' => {
                    self.pos = i + 1;
                    return Some((name, TagEnd::Open));
                }
                b'/' => {
                    if b.get(i + 1) != Some(&b'>') {
                        return None;
                    }
                    self.pos = i + 2;
                    return Some((name, TagEnd::Empty));
                }
                _ if !spaced => return None,
                _ => {}
            }
            let key_start = i;
            while i < b.len() && is_name_byte(b[i]) {
                i += 1;
            }
            if i == key_start || b.get(i) != Some(&b'=') {
                return None;
            }
            let key = &self.s[key_start..i];
            let quote = *b.get(i + 1)?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let value_start = i + 2;
            let len = memchr(quote, b.get(value_start..)?)?;
            let value = &self.s[value_start..value_start + len];
            if memchr(b'<', value.as_bytes()).is_some() {
                return None;
            }
            check_references(value)?;
            self.attrs.push((key, value));
            i = value_start + len + 1;
        }
    }

    fn start_tag(&mut self) -> Option<()> {
        let (name, end) = self.tag()?;
        // Namespace declarations of this element.
        // The root, or a child of the listing's wrapper (ignored subtrees are not in the
        // parser's stack: they are consumed whole).
        let at_entry_level = self.parser.stack.is_empty() || self.parser.stack == [Ctx::Wrapper];
        let mut default = self.open.last().map_or(Ns::None, |o| o.default);
        let mut declares = false;
        for (key, value) in &self.attrs {
            if let Some(rest) = key.strip_prefix("xmlns") {
                if value.is_empty() || value.bytes().any(|b| b == b'&') {
                    return None;
                }
                if rest.is_empty() {
                    default = classify_uri(value);
                } else {
                    // Prefixed declarations: on an entry's rdf:RDF only (where they replace
                    // the previous entry's).
                    let prefix = rest.strip_prefix(':')?;
                    if !at_entry_level
                        || name != "rdf:RDF"
                        || prefix.is_empty()
                        || prefix.bytes().any(|b| b == b':')
                        || prefix.starts_with("xml")
                    {
                        return None;
                    }
                    if !declares {
                        declares = true;
                        self.bound.clear();
                    }
                    self.bound.push((prefix, classify_uri(value)));
                }
            }
        }
        if at_entry_level && !declares {
            self.bound.clear();
        }
        let (ns, local) = match split_colon(name) {
            Some((prefix, local)) => {
                if local.is_empty() || local.bytes().any(|b| b == b':') {
                    return None;
                }
                (resolve(&self.bound, prefix)?, local)
            }
            None => (default, name),
        };
        let tag = FastTag {
            name,
            attrs: &self.attrs,
            bound: &self.bound,
        };
        let ctx = self.parser.start(ns, local, &tag).ok()?;
        if end == TagEnd::Empty {
            self.parser.end();
            if at_entry_level {
                self.bound.clear();
            }
            return Some(());
        }
        if ctx == Ctx::Skip {
            self.skip_subtree(name)?;
            self.parser.end();
            if at_entry_level {
                self.bound.clear();
            }
            return Some(());
        }
        if at_entry_level {
            self.bound_depth = self.open.len() + 1;
        }
        self.open.push(Open { name, default });
        Some(())
    }

    fn end_tag(&mut self) -> Option<()> {
        let open = self.open.pop()?;
        self.end_of(open.name)?;
        if self.open.len() + 1 == self.bound_depth {
            self.bound.clear();
            self.bound_depth = 0;
        }
        self.parser.end();
        Some(())
    }

    /// The end tag at `pos` is `</name>` (no white space); leaves `pos` after it.
    fn end_of(&mut self, name: &str) -> Option<()> {
        let from = self.pos + 2;
        let to = from + name.len();
        if self.b.get(from..to)? != name.as_bytes() || self.b.get(to) != Some(&b'>') {
            return None;
        }
        self.pos = to + 1;
        Some(())
    }

    /// Consumes an ignored subtree whose start tag `name` was just read, through its end tag.
    fn skip_subtree(&mut self, name: &'a str) -> Option<()> {
        self.skip.clear();
        self.skip.push(name);
        let b = self.b;
        while let Some(top) = self.skip.last().copied() {
            let lt = self.pos + memchr(b'<', &b[self.pos..])?;
            check_references(&self.s[self.pos..lt])?;
            self.pos = lt;
            match b.get(lt + 1)? {
                b'/' => {
                    self.end_of(top)?;
                    self.skip.pop();
                }
                b'!' => {
                    if b[lt..].starts_with(b"<!--") {
                        self.comment()?;
                    } else if b[lt..].starts_with(b"<![CDATA[") {
                        self.cdata()?;
                    } else {
                        return None;
                    }
                }
                b'?' => return None,
                _ => {
                    let (inner, end) = self.tag()?;
                    if end == TagEnd::Open {
                        self.skip.push(inner);
                    }
                }
            }
        }
        Some(())
    }
}

/// The offset of the `;` closing a reference that starts just before `after` (quick-xml: the
/// first of `;`, `&`, `<` must be `;`).
fn reference_end(after: &str) -> Option<usize> {
    let b = after.as_bytes();
    let i = memchr3(b';', b'&', b'<', b)?;
    (b[i] == b';').then_some(i)
}

/// Every `&` in `seg` starts a reference that closes.
fn check_references(seg: &str) -> Option<()> {
    // Mostly the white space between two tags.
    if seg.len() < 32 && !seg.bytes().any(|b| b == b'&') {
        return Some(());
    }
    let mut rest = seg;
    while let Some(amp) = memchr(b'&', rest.as_bytes()) {
        let after = &rest[amp + 1..];
        let semi = reference_end(after)?;
        rest = &after[semi + 1..];
    }
    Some(())
}

/// Appends text with XML 1.0 end-of-line normalization (`\r\n` and `\r` → `\n`), as
/// quick-xml's `xml10_content` does.
fn push_text(out: &mut String, text: &str) {
    if memchr(b'\r', text.as_bytes()).is_none() {
        out.push_str(text);
        return;
    }
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/marketplace");

    /// Every real document (the `.xml` fixtures), by path.
    fn real_documents() -> Vec<(String, String)> {
        let mut out = Vec::new();
        for sub in std::fs::read_dir(FIXTURES).unwrap() {
            let sub = sub.unwrap().path();
            if !sub.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&sub).unwrap() {
                let f = f.unwrap().path();
                let bytes = std::fs::read(&f).unwrap();
                let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
                if let Ok(text) = std::str::from_utf8(bytes) {
                    out.push((f.display().to_string(), text.to_owned()));
                }
            }
        }
        out.sort();
        out
    }

    type Comparable = Result<(Root, Vec<Result<ImageEntry, String>>), String>;

    fn comparable(
        read: Result<(Root, Vec<Result<ImageEntry, MarketplaceError>>), MarketplaceError>,
    ) -> Comparable {
        read.map(|(root, entries)| {
            (
                root,
                entries
                    .into_iter()
                    .map(|e| e.map_err(|e| e.to_string()))
                    .collect(),
            )
        })
        .map_err(|e| e.to_string())
    }

    /// The fast path's answer, if any, is quick-xml's; returns whether there was one.
    fn agrees(text: &str, inside: bool) -> Result<bool, String> {
        let Some(fast) = read(text, inside) else {
            return Ok(false);
        };
        let quick = comparable(super::super::read(text, inside));
        let fast = comparable(Ok(fast));
        if fast == quick {
            Ok(true)
        } else {
            Err(format!("fast {fast:?}\nquick {quick:?}"))
        }
    }

    /// The local cloud's listing of `n` synthetic entries.
    fn synthetic(n: usize) -> String {
        let mut catalog = crate::localcloud::marketplace::Catalog::new();
        catalog.seed(n);
        String::from_utf8(
            catalog
                .handle("GET", "/metadata", "", Some("application/xml"), 0)
                .body
                .to_vec(),
        )
        .unwrap()
    }

    /// The children of a listing's `<metadata>`, as a piece is read.
    fn inside(listing: &str) -> &str {
        let from = listing.find("<metadata>").unwrap() + "<metadata>".len();
        let to = listing.rfind("</metadata>").unwrap();
        &listing[from..to]
    }

    /// A listing of every real entry that reads on its own (signed, unsigned, invalid ones).
    fn real_listing() -> String {
        let docs: Vec<String> = real_documents()
            .into_iter()
            .filter(|(_, text)| matches!(super::super::read(text, false), Ok((Root::Entry, _))))
            .map(|(_, text)| text)
            .collect();
        let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
        crate::marketplace::write_listing(&docs)
    }

    #[test]
    fn real_documents_read_as_with_quick_xml() {
        let mut fast = 0;
        let documents = real_documents();
        for (path, text) in &documents {
            match agrees(text, false) {
                Ok(true) => fast += 1,
                Ok(false) => {}
                Err(diff) => panic!("{path}: {diff}"),
            }
        }
        // The fast path is not a no-op: all but the odd ones take it (signed ones included).
        assert!(
            fast * 10 >= documents.len() * 8,
            "{fast} of {}",
            documents.len()
        );
        let signed = documents
            .iter()
            .find(|(p, _)| p.ends_with("server-tests/valid-two-locations.xml"))
            .unwrap();
        assert_eq!(agrees(&signed.1, false), Ok(true));
        let listing = real_listing();
        assert_eq!(agrees(&listing, false), Ok(true));
        assert_eq!(agrees(inside(&listing), true), Ok(true));
    }

    #[test]
    fn synthetic_listing_reads_as_with_quick_xml() {
        let listing = synthetic(300);
        assert_eq!(agrees(&listing, false), Ok(true));
        assert_eq!(agrees(inside(&listing), true), Ok(true));
        let (_, entries) = read(&listing, false).unwrap();
        assert_eq!(entries.len(), 300);
        assert!(entries.iter().all(Result::is_ok));
    }

    #[test]
    fn what_the_fast_path_leaves_to_quick_xml() {
        let listing = synthetic(2);
        for (from, to) in [
            ("<metadata>", "<!DOCTYPE metadata><metadata>"),
            (
                "xmlns:slreq=",
                "xmlns:xml=\"http://example.org/\" xmlns:slreq=",
            ),
            ("<dcterms:title>", "<dcterms:title xmlns=\"\">"),
            (
                "<dcterms:title>",
                "<dcterms:title xmlns:dcterms=\"http://purl.org/dc/terms/\">",
            ),
            ("<dcterms:title>", "<ex:title>"),
            ("</dcterms:title>", "</dcterms:title >"),
            ("rdf:about=\"#", "rdf:about=\"&#35;"),
            ("<dcterms:title>", "<?pi?><dcterms:title>"),
            ("<slterms:os>", "<slterms:os a=b>"),
            ("<slterms:os>", "<x:y/><slterms:os>"),
            ("<slterms:os>", "<slterms:os a = \"b\">"),
            ("ttylinux<", "ttylinux & more<"),
        ] {
            let changed = listing.replacen(from, to, 1);
            assert_ne!(changed, listing, "{from}");
            assert_eq!(agrees(&changed, false), Ok(false), "{to}");
        }
        // ...but references, CDATA, comments and line ends it reads.
        for (from, to) in [
            ("ttylinux<", "tty&amp;&#x41;&#66;&lt;&gt;&quot;&apos;<"),
            ("ttylinux<", "tty<![CDATA[<x>&amp;]]>\r\n<!-- c -->linux\r<"),
            ("ttylinux<", "tty&bogus;<"),
            (
                "<dcterms:title>",
                "<dcterms:title xmlns=\"http://example.org/\"/><dcterms:title>",
            ),
            (
                "<slterms:os>",
                "<created xmlns=\"http://purl.org/dc/terms/\">x</created><slterms:os>",
            ),
            (
                "xmlns:slreq=",
                "xmlns:ex=\"http://example.org/\" xmlns:slreq=",
            ),
            (
                "xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"",
                "xmlns:rdf=\"http://example.org/\"",
            ),
        ] {
            let changed = listing.replacen(from, to, 1);
            assert_ne!(changed, listing, "{from}");
            assert_eq!(agrees(&changed, false), Ok(true), "{to}");
        }
    }

    /// Snippets inserted at random places by the property tests: markup, references, namespace
    /// declarations, line ends, quotes.
    const TRICKY: [&str; 28] = [
        "&amp;",
        "&#233;",
        "&#xD800;",
        "&bogus;",
        "&",
        ";",
        "<![CDATA[a<b]]>",
        "]]>",
        "<!-- c -->",
        "<!--->",
        "<?pi x?>",
        "<x>",
        "</x>",
        "<x/>",
        "<x><y/></x>",
        "\r",
        "\r\n",
        "\"",
        "'",
        ">",
        "<",
        " xmlns=\"http://purl.org/dc/terms/\"",
        " xmlns:rdf=\"http://example.org/\"",
        " rdf:about=\"#y\"",
        " rdf:parseType=\"Literal\"",
        "</rdf:RDF><rdf:RDF>",
        "<dcterms:identifier>MMZu9WvwKIro-rtBQfDk4PsKO7_</dcterms:identifier>",
        "<slreq:endorsement rdf:parseType=\"Resource\"></slreq:endorsement>",
    ];

    fn char_floor(s: &str, mut at: usize) -> usize {
        at = at.min(s.len());
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1500))]

        #[test]
        fn tricky_insertions_read_as_with_quick_xml(
            doc in 0usize..64,
            edits in proptest::collection::vec((proptest::prelude::any::<u32>(), 0usize..TRICKY.len()), 1..4),
        ) {
            let documents = real_documents();
            let mut text = documents[doc % documents.len()].1.clone();
            for (at, which) in edits {
                let at = char_floor(&text, at as usize % (text.len() + 1));
                text.insert_str(at, TRICKY[which]);
            }
            proptest::prop_assert_eq!(agrees(&text, false).map(|_| ()), Ok(()));
        }

        #[test]
        fn mangled_bytes_read_as_with_quick_xml(
            doc in 0usize..64,
            edits in proptest::collection::vec((proptest::prelude::any::<u32>(), 0u8..128), 1..3),
        ) {
            let documents = real_documents();
            let mut text = documents[doc % documents.len()].1.clone().into_bytes();
            for (at, byte) in edits {
                let at = at as usize % text.len();
                text[at] = byte;
            }
            if let Ok(text) = std::str::from_utf8(&text) {
                proptest::prop_assert_eq!(agrees(text, false).map(|_| ()), Ok(()));
            }
        }

        #[test]
        fn spliced_listings_read_as_with_quick_xml(
            cuts in proptest::collection::vec((proptest::prelude::any::<u32>(), proptest::prelude::any::<u32>(), proptest::prelude::any::<u32>()), 1..3),
            piece in proptest::prelude::any::<bool>(),
        ) {
            // A range of the listing copied elsewhere in it: entries cut anywhere, elements
            // closed twice, namespaces out of scope.
            let listing = real_listing();
            let mut text = if piece { inside(&listing).to_owned() } else { listing.clone() };
            for (a, b, to) in cuts {
                // Cut before markup, mostly before an entry, so that many splices are well
                // formed and reach the reader's checks.
                let at_markup = |at: u32, marker: &str| {
                    let at = char_floor(&text, at as usize % (text.len() + 1));
                    text[at..].find(marker).map_or(text.len(), |i| at + i)
                };
                let marker = if a % 2 == 0 { "<rdf:RDF" } else { "<" };
                let (a, b) = (at_markup(a, marker), at_markup(b, marker));
                let (a, b) = (a.min(b), a.max(b));
                let copy = text[a..b].to_owned();
                let to = at_markup(to, marker);
                text.insert_str(to, &copy);
            }
            proptest::prop_assert_eq!(agrees(&text, piece).map(|_| ()), Ok(()));
        }
    }

    #[test]
    #[ignore = "timing"]
    fn timing_fast_vs_quick() {
        let text = synthetic(5000);
        let (mut fast, mut quick) = (std::time::Duration::MAX, std::time::Duration::MAX);
        for _ in 0..10 {
            let t = std::time::Instant::now();
            assert!(read(&text, false).is_some());
            fast = fast.min(t.elapsed());
            let t = std::time::Instant::now();
            assert!(super::super::read(&text, false).is_ok());
            quick = quick.min(t.elapsed());
        }
        println!("fast {fast:?} quick {quick:?}");
        if std::env::var_os("RDF_PROFILE").is_some() {
            for _ in 0..200 {
                assert!(read(&text, false).is_some());
            }
        }
    }
}
