//! Writes entries and listings in the real Marketplace format (spec §5.3, §5.6), for the local cloud.
//!
//! Namespaces, `xml:base`, `rdf:about="#<id>"`, element order and `rdf:parseType="Resource"`
//! nesting follow the client's entry template (`manifest.xml.tpl`) and the server's samples. The
//! elements the original Python client insists on (`dcterms:type`, `valid`, `description`,
//! `compression`, `slterms:os`, `os-version`, `os-arch`, `version`, `slreq:bytes`) are always
//! written, empty when the field is `None`, which reads back as `None`. The endorsement date is
//! also written as the top-level `dcterms:created`, as client-built entries have one. Written
//! entries are unsigned (no XML-DSig `Signature`) and say so in a comment.

use std::fmt::Write as _;

use quick_xml::escape::escape;

use super::rdf::{ImageEntry, DCTERMS_NS, RDF_NS, SLREQ_NS, SLTERMS_NS, XML_BASE};

/// The XML declaration of every Marketplace document.
pub const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?>"#;

/// Appends `<name>text</name>` (or `<name/>` for `None`) on its own indented line.
fn element(out: &mut String, indent: usize, name: &str, value: Option<&str>) {
    out.push_str(&" ".repeat(indent));
    match value {
        Some(v) if !v.is_empty() => {
            let _ = write!(out, "<{name}>{}</{name}>", escape(v));
        }
        _ => {
            let _ = write!(out, "<{name}/>");
        }
    }
    out.push('\n');
}

/// Appends the element only when the value is present.
fn optional(out: &mut String, indent: usize, name: &str, value: Option<&str>) {
    if value.is_some() {
        element(out, indent, name, value);
    }
}

/// One unsigned `rdf:RDF` document for an entry.
pub fn write_entry(entry: &ImageEntry) -> String {
    let mut out = String::with_capacity(2048);
    let id = escape(&entry.identifier);
    out.push_str(XML_DECLARATION);
    out.push('\n');
    out.push_str(
        "<!-- Synthetic entry written by the stratuslab-libcloud local cloud: unsigned (no XML-DSig Signature). -->\n",
    );
    let _ = writeln!(
        out,
        r#"<rdf:RDF xmlns:rdf="{RDF_NS}" xmlns:dcterms="{DCTERMS_NS}" xmlns:slterms="{SLTERMS_NS}" xmlns:slreq="{SLREQ_NS}" xml:base="{XML_BASE}">"#
    );
    let _ = writeln!(out, r##"    <rdf:Description rdf:about="#{id}">"##);
    element(&mut out, 8, "dcterms:identifier", Some(&entry.identifier));
    let bytes = entry.bytes.map(|b| b.to_string());
    element(&mut out, 8, "slreq:bytes", bytes.as_deref());
    for (algorithm, value) in &entry.checksums {
        out.push_str("        <slreq:checksum rdf:parseType=\"Resource\">\n");
        element(&mut out, 12, "slreq:algorithm", Some(algorithm));
        element(&mut out, 12, "slreq:value", Some(value));
        out.push_str("        </slreq:checksum>\n");
    }
    if entry.created.is_none() && entry.endorser.is_none() {
        out.push_str("        <slreq:endorsement rdf:parseType=\"Resource\"/>\n");
    } else {
        out.push_str("        <slreq:endorsement rdf:parseType=\"Resource\">\n");
        optional(&mut out, 12, "dcterms:created", entry.created.as_deref());
        if let Some(endorser) = &entry.endorser {
            out.push_str("            <slreq:endorser rdf:parseType=\"Resource\">\n");
            element(&mut out, 16, "slreq:email", Some(&endorser.email));
            element(&mut out, 16, "slreq:subject", Some(&endorser.subject));
            element(&mut out, 16, "slreq:issuer", Some(&endorser.issuer));
            out.push_str("            </slreq:endorser>\n");
        }
        out.push_str("        </slreq:endorsement>\n");
    }
    element(&mut out, 8, "dcterms:type", entry.image_type.as_deref());
    optional(&mut out, 8, "slterms:kind", entry.kind.as_deref());
    element(&mut out, 8, "slterms:os", entry.os.as_deref());
    element(
        &mut out,
        8,
        "slterms:os-version",
        entry.os_version.as_deref(),
    );
    element(&mut out, 8, "slterms:os-arch", entry.arch.as_deref());
    element(&mut out, 8, "slterms:version", entry.version.as_deref());
    element(
        &mut out,
        8,
        "dcterms:compression",
        entry.compression.as_deref(),
    );
    for location in &entry.locations {
        element(&mut out, 8, "slterms:location", Some(location));
    }
    optional(&mut out, 8, "dcterms:format", entry.format.as_deref());
    optional(&mut out, 8, "dcterms:creator", entry.creator.as_deref());
    optional(&mut out, 8, "dcterms:created", entry.created.as_deref());
    element(&mut out, 8, "dcterms:valid", entry.valid_until.as_deref());
    optional(&mut out, 8, "dcterms:title", entry.title.as_deref());
    optional(&mut out, 8, "dcterms:alternative", entry.tag.as_deref());
    element(
        &mut out,
        8,
        "dcterms:description",
        entry.description.as_deref(),
    );
    optional(
        &mut out,
        8,
        "slterms:hypervisor",
        entry.hypervisor.as_deref(),
    );
    optional(&mut out, 8, "slterms:disks-bus", entry.disks_bus.as_deref());
    for port in &entry.inbound_ports {
        element(&mut out, 8, "slterms:inbound-port", Some(&port.to_string()));
    }
    for port in &entry.outbound_ports {
        element(
            &mut out,
            8,
            "slterms:outbound-port",
            Some(&port.to_string()),
        );
    }
    let serial = entry.serial_number.map(|n| n.to_string());
    optional(&mut out, 8, "slterms:serial-number", serial.as_deref());
    optional(&mut out, 8, "dcterms:publisher", entry.publisher.as_deref());
    optional(
        &mut out,
        8,
        "slterms:deprecated",
        entry.deprecated.as_deref(),
    );
    out.push_str("    </rdf:Description>\n</rdf:RDF>\n");
    out
}

/// A document without its leading XML declaration (and byte-order mark).
fn strip_declaration(doc: &str) -> &str {
    let doc = doc.strip_prefix('\u{feff}').unwrap_or(doc);
    if doc.starts_with("<?xml") {
        if let Some(end) = doc.find("?>") {
            return &doc[end + 2..];
        }
    }
    doc
}

/// The XML listing: the declaration, `<metadata>`, each document without its own declaration,
/// `</metadata>` (as the server concatenates them).
pub fn write_listing(docs: &[&str]) -> String {
    let mut out = String::with_capacity(64 + docs.iter().map(|d| d.len()).sum::<usize>());
    out.push_str(XML_DECLARATION);
    out.push_str("<metadata>");
    for doc in docs {
        out.push_str(strip_declaration(doc));
    }
    out.push_str("</metadata>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marketplace::rdf::{parse_entry, parse_listing, Endorser};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/marketplace");

    fn full_entry() -> ImageEntry {
        ImageEntry {
            identifier: "MMZu9WvwKIro-rtBQfDk4PsKO7_".into(),
            title: Some("ttylinux & <friends>".into()),
            tag: Some("ttylinux".into()),
            description: Some("Synthetic \"quoted\" 'image'\nsecond line".into()),
            os: Some("ttylinux".into()),
            os_version: Some("9.7".into()),
            arch: Some("i486".into()),
            version: Some("1.0".into()),
            endorser: Some(Endorser {
                email: "jane.tester@example.org".into(),
                subject: "CN=Jane Tester,O=StratusLab Project,C=EU".into(),
                issuer: "CN=Jane Tester,O=StratusLab Project,C=EU".into(),
            }),
            created: Some("2011-01-24T09:59:42Z".into()),
            valid_until: Some("2099-07-23T10:59:42Z".into()),
            deprecated: Some("security issue".into()),
            format: Some("qcow2".into()),
            compression: Some("gz".into()),
            bytes: Some(107_374_182_400),
            checksums: vec![
                ("MD5".into(), "5c9597f3c8245907ea71a89d9d39d08e".into()),
                (
                    "SHA-1".into(),
                    "c319bbd5afc0a22ba3eaed0507c39383ec28eeff".into(),
                ),
            ],
            locations: vec![
                "http://example.org/a.img.gz?x=1&y=2".into(),
                "pdisk:example.org:8445:1234".into(),
            ],
            kind: Some("machine".into()),
            image_type: Some("base".into()),
            hypervisor: Some("kvm".into()),
            disks_bus: Some("virtio".into()),
            inbound_ports: vec![22, 443],
            outbound_ports: vec![25],
            publisher: Some("StratusLab".into()),
            creator: Some("Jane Tester".into()),
            serial_number: Some(7),
            identifier_mismatch: false,
        }
    }

    #[test]
    fn round_trip_full() {
        let entry = full_entry();
        assert_eq!(parse_entry(write_entry(&entry).as_bytes()).unwrap(), entry);
    }

    #[test]
    fn round_trip_minimal_and_mismatch() {
        let entry = ImageEntry {
            identifier: "BEE8-MMAw-Lk_IgsEExAy3d9R8h".into(),
            ..ImageEntry::default()
        };
        assert_eq!(parse_entry(write_entry(&entry).as_bytes()).unwrap(), entry);
        let entry = ImageEntry {
            identifier: "BEE8-MMAw-Lk_IgsEExAy3d9R8h".into(),
            checksums: vec![(
                "SHA-1".into(),
                "c319bbd5afc0a22ba3eaed0507c39383ec28eeff".into(),
            )],
            created: Some("2011-01-24T09:59:42Z".into()),
            identifier_mismatch: true,
            ..ImageEntry::default()
        };
        assert_eq!(parse_entry(write_entry(&entry).as_bytes()).unwrap(), entry);
    }

    /// Every accepted real fixture survives read → write → read.
    #[test]
    fn round_trip_real_entries() {
        let mut count = 0;
        for sub in [
            "client-resources",
            "client-tests",
            "metadata-lib",
            "server-tests",
        ] {
            for file in std::fs::read_dir(format!("{FIXTURES}/{sub}")).unwrap() {
                let bytes = std::fs::read(file.unwrap().path()).unwrap();
                for entry in parse_listing(&bytes).unwrap().into_iter().flatten() {
                    assert_eq!(parse_entry(write_entry(&entry).as_bytes()).unwrap(), entry);
                    count += 1;
                }
            }
        }
        assert_eq!(count, 34);
    }

    #[test]
    fn golden_minimal_document() {
        let entry = ImageEntry {
            identifier: "BEE8-MMAw-Lk_IgsEExAy3d9R8h".into(),
            bytes: Some(128),
            checksums: vec![(
                "SHA-1".into(),
                "1104f3e30c030f8b93f220b04131032dddf51f21".into(),
            )],
            created: Some("2014-03-08T14:28:15Z".into()),
            endorser: Some(Endorser {
                email: "jane.tester@example.org".into(),
                subject: "CN=Jane Tester".into(),
                issuer: "CN=TestCA".into(),
            }),
            locations: vec!["http://www.example.org/1234".into()],
            ..ImageEntry::default()
        };
        let expected = r##"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!-- Synthetic entry written by the stratuslab-libcloud local cloud: unsigned (no XML-DSig Signature). -->
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:slterms="http://mp.stratuslab.eu/slterms#" xmlns:slreq="http://mp.stratuslab.eu/slreq#" xml:base="http://mp.stratuslab.eu/">
    <rdf:Description rdf:about="#BEE8-MMAw-Lk_IgsEExAy3d9R8h">
        <dcterms:identifier>BEE8-MMAw-Lk_IgsEExAy3d9R8h</dcterms:identifier>
        <slreq:bytes>128</slreq:bytes>
        <slreq:checksum rdf:parseType="Resource">
            <slreq:algorithm>SHA-1</slreq:algorithm>
            <slreq:value>1104f3e30c030f8b93f220b04131032dddf51f21</slreq:value>
        </slreq:checksum>
        <slreq:endorsement rdf:parseType="Resource">
            <dcterms:created>2014-03-08T14:28:15Z</dcterms:created>
            <slreq:endorser rdf:parseType="Resource">
                <slreq:email>jane.tester@example.org</slreq:email>
                <slreq:subject>CN=Jane Tester</slreq:subject>
                <slreq:issuer>CN=TestCA</slreq:issuer>
            </slreq:endorser>
        </slreq:endorsement>
        <dcterms:type/>
        <slterms:os/>
        <slterms:os-version/>
        <slterms:os-arch/>
        <slterms:version/>
        <dcterms:compression/>
        <slterms:location>http://www.example.org/1234</slterms:location>
        <dcterms:created>2014-03-08T14:28:15Z</dcterms:created>
        <dcterms:valid/>
        <dcterms:description/>
    </rdf:Description>
</rdf:RDF>
"##;
        assert_eq!(write_entry(&entry), expected);
    }

    #[test]
    fn escaping() {
        let mut entry = full_entry();
        entry.identifier = "MMZu9WvwKIro-rtBQfDk4PsKO7_".into();
        let xml = write_entry(&entry);
        assert!(xml.contains("<dcterms:title>ttylinux &amp; &lt;friends&gt;</dcterms:title>"));
        assert!(xml.contains("http://example.org/a.img.gz?x=1&amp;y=2"));
    }

    #[test]
    fn listing_wrapper_strips_declarations() {
        let one = write_entry(&full_entry());
        let real =
            std::fs::read_to_string(format!("{FIXTURES}/server-tests/valid-two-locations.xml"))
                .unwrap();
        let listing = write_listing(&[&one, &real]);
        assert!(listing.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?><metadata>\n<!-- Synthetic"
        ));
        assert!(listing.contains("</rdf:RDF>\n<rdf:RDF xmlns:dcterms="));
        assert!(listing.ends_with("</Signature></rdf:RDF></metadata>"));
        assert_eq!(listing.matches("<?xml").count(), 1);
        let entries = parse_listing(listing.as_bytes()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].as_ref().unwrap(), &full_entry());
        assert_eq!(
            write_listing(&[]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?><metadata></metadata>"
        );
    }
}
