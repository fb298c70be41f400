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
