//! Golden expectations of the reader on every real fixture under `tests/fixtures/marketplace/`
//! (one line per entry: `Ok: <summary>` or `Err: <message>`; see [`summary`]).

use super::*;

/// Every field of an entry on one line (descriptions cut to 40 characters).
pub(super) fn summary(e: &ImageEntry) -> String {
    let desc = e
        .description
        .as_deref()
        .map(|d| d.chars().take(40).collect::<String>());
    format!(
        "{} t={:?} tag={:?} d={:?} os={:?}/{:?}/{:?} v={:?} by={:?} at={:?} valid={:?} dep={:?} \
         fmt={:?}/{:?} bytes={:?} loc={:?} sums={:?} sha1={:?} type={:?}/{:?} hv={:?} \
         ports={:?}/{:?} pub={:?} creator={:?} serial={:?} mismatch={}",
        e.identifier,
        e.title,
        e.tag,
        desc,
        e.os,
        e.os_version,
        e.arch,
        e.version,
        e.endorser.as_ref().map(|x| x.email.as_str()),
        e.created,
        e.valid_until,
        e.deprecated,
        e.format,
        e.compression,
        e.bytes,
        e.locations,
        e.checksums
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>(),
        e.sha1(),
        e.image_type,
        e.kind,
        e.hypervisor,
        e.inbound_ports,
        e.outbound_ports,
        e.publisher,
        e.creator,
        e.serial_number,
        e.identifier_mismatch
    )
}

/// (fixture path, one expectation per entry). The invalid metadata-lib cases the reader accepts
/// are accepted on purpose: `invalid-bad-icmp-value` (icmp is not read), `invalid-bad-xml-base`
/// and `invalid-no-xml-base` (xml:base is not checked), `invalid-no-endorsement` and
/// `invalid-no-endorser` (an unendorsed template is readable; the catalog refuses it),
/// `invalid-rdf-attribute` and `invalid-rdf-resource` (unknown elements are skipped),
/// `invalid-inconsistent-checksum` (flagged by `identifier_mismatch`).
pub(super) const GOLDEN: &[(&str, &[&str])] = &[
    (
        "client-resources/manifest-invalid-sha1.xml",
        &[
            r#"Ok: JcqGhHxmTRAEpHMmRF-xhSTM3TO t=None tag=None d=Some("dummy manifest to test sha1 mismatch.") os=Some("fedora")/Some("14")/Some("i386") v=Some("0.1") by=Some("Konstantin.Skaburskas@cern.ch") at=Some("2012-09-13T13:13:38Z") valid=Some("2020-12-31T00:00:00Z") dep=None fmt=Some("raw")/Some("gz") bytes=Some(4) loc=["http://appliances.stratuslab.eu/images/base/ttylinux-9.7-i486-base/1.4/ttylinux-9.7-i486-base-1.4.qcow.gz"] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("972a1a11f19934401291cc99117ec614933374ce") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Konstantin Skaburskas") serial=None mismatch=false"#,
        ],
    ),
    (
        "client-resources/manifest.xml.tpl",
        &[
            r#"Err: invalid Marketplace entry: %(identifier)s: slreq:bytes '%(bytes)s' is not a non-negative integer"#,
        ],
    ),
    (
        "client-tests/hackers-full.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=Some("linux-with-my-apps") tag=None d=Some("A 32-bit ttylinux...") os=Some("ttylinux")/Some("9.7")/Some("i486") v=Some("1.0") by=Some("hackers@lal.in2p3.fr") at=Some("2011-01-24T09:59:42Z") valid=Some("2011-07-23T10:59:42Z") dep=Some("security issue with app") fmt=None/None bytes=Some(100) loc=["http://example.org/..."] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=Some("kvm") ports=[443]/[25] pub=Some("StratusLab") creator=None serial=Some(0) mismatch=false"#,
        ],
    ),
    (
        "client-tests/valid-multiple-entries.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=Some("linux-with-my-apps") tag=Some("ttylinux") d=Some("A 32-bit ttylinux...") os=Some("ttylinux")/Some("9.7")/Some("i486") v=Some("1.0") by=Some("hackers@example.org") at=Some("2011-01-24T09:59:42Z") valid=Some("2011-07-23T10:59:42Z") dep=Some("security issue with app") fmt=None/Some("gz") bytes=Some(100) loc=["http://example.org/..."] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=Some("kvm") ports=[443]/[25] pub=Some("StratusLab") creator=None serial=Some(0) mismatch=false"#,
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=Some("linux-with-my-apps") tag=Some("ttylinux") d=Some("A 32-bit ttylinux...") os=Some("ttylinux")/Some("9.7")/Some("i486") v=Some("1.0") by=Some("airaj@lal.in2p3.fr") at=Some("2011-01-24T09:59:42Z") valid=Some("2011-07-23T10:59:42Z") dep=Some("security issue with app") fmt=None/Some("gz") bytes=Some(100) loc=["http://example.org/..."] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=Some("kvm") ports=[443]/[25] pub=Some("StratusLab") creator=None serial=Some(0) mismatch=false"#,
        ],
    ),
    (
        "client-tests/valid-single-entry.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=Some("linux-with-my-apps") tag=Some("ttylinux") d=Some("A 32-bit ttylinux...") os=Some("ttylinux")/Some("9.7")/Some("i486") v=Some("1.0") by=Some("airaj@lal.in2p3.fr") at=Some("2011-01-24T09:59:42Z") valid=Some("2011-07-23T10:59:42Z") dep=Some("security issue with app") fmt=None/Some("gz") bytes=Some(100) loc=["http://example.org/..."] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=Some("kvm") ports=[443]/[25] pub=Some("StratusLab") creator=None serial=Some(0) mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/autogen-endorsement-done.xml",
        &[r#"Err: invalid Marketplace entry: no dcterms:identifier"#],
    ),
    (
        "metadata-lib/autogen-endorsement-not-done.xml",
        &[r#"Err: invalid Marketplace entry: no dcterms:identifier"#],
    ),
    (
        "metadata-lib/invalid-bad-about-id.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: rdf:about '#MMZu9WvwKIro-rtBQ' does not name dcterms:identifier"#,
        ],
    ),
    (
        "metadata-lib/invalid-bad-checksum-parsetype.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: slreq:checksum has rdf:parseType 'BAD', expected 'Resource'"#,
        ],
    ),
    (
        "metadata-lib/invalid-bad-element-for-signature.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: more than one rdf:Description"#,
        ],
    ),
    (
        "metadata-lib/invalid-bad-endorsement-parsetype.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: slreq:endorsement has rdf:parseType 'BAD', expected 'Resource'"#,
        ],
    ),
    (
        "metadata-lib/invalid-bad-endorser-parsetype.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: slreq:endorser has rdf:parseType 'BAD', expected 'Resource'"#,
        ],
    ),
    (
        "metadata-lib/invalid-bad-icmp-value.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=None/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/invalid-bad-inbound-port.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: slterms:inbound-port '65536' is not a port number (0-65535)"#,
        ],
    ),
    (
        "metadata-lib/invalid-bad-outbound-port.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: slterms:outbound-port '65536' is not a port number (0-65535)"#,
        ],
    ),
    (
        "metadata-lib/invalid-bad-serial-number.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: slterms:serial-number 'X' is not a non-negative integer"#,
        ],
    ),
    (
        "metadata-lib/invalid-bad-xml-base.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/invalid-checksum-value.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: SHA-1 checksum value 'XYZ' is not hexadecimal"#,
        ],
    ),
    (
        "metadata-lib/invalid-created-date-1.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: slreq:endorsement/dcterms:created '2011-01-24X09:59:42Z' is not a date yyyy-MM-ddTHH:mm:ssZ"#,
        ],
    ),
    (
        "metadata-lib/invalid-created-date-2.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: slreq:endorsement/dcterms:created '2011-01-24T99:59:42Z' is not a date yyyy-MM-ddTHH:mm:ssZ"#,
        ],
    ),
    (
        "metadata-lib/invalid-dcterms-type.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: dcterms:type holds an element <dcterms:identifier>, expected text"#,
        ],
    ),
    (
        "metadata-lib/invalid-email.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: endorser e-mail 'jane.tester_at_example.org' is not an e-mail address"#,
        ],
    ),
    (
        "metadata-lib/invalid-inconsistent-checksum.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eefe") type=Some("machine")/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=true"#,
        ],
    ),
    (
        "metadata-lib/invalid-inconsistent-identifiers.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO77: rdf:about '#MMZu9WvwKIro-rtBQfDk4PsKO7_' does not name dcterms:identifier"#,
        ],
    ),
    (
        "metadata-lib/invalid-multiple-deprecated.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: more than one slterms:deprecated"#,
        ],
    ),
    (
        "metadata-lib/invalid-multiple-os-arch.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: more than one slterms:os-arch"#,
        ],
    ),
    (
        "metadata-lib/invalid-multiple-os-version.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: more than one slterms:os-version"#,
        ],
    ),
    (
        "metadata-lib/invalid-multiple-os.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: more than one slterms:os"#,
        ],
    ),
    (
        "metadata-lib/invalid-multiple-serial-numbers.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: more than one slterms:serial-number"#,
        ],
    ),
    (
        "metadata-lib/invalid-multiple-versions.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: more than one slterms:version"#,
        ],
    ),
    (
        "metadata-lib/invalid-no-content.xml",
        &[r#"Err: invalid Marketplace entry: rdf:RDF holds no rdf:Description"#],
    ),
    (
        "metadata-lib/invalid-no-endorsement.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=None at=None valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=None/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/invalid-no-endorser.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=None at=Some("2011-01-24T09:59:42Z") valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=None/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/invalid-no-xml-base.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=None/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/invalid-rdf-attribute.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/invalid-rdf-resource.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/invalid-valid-date-1.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: dcterms:valid '2011-01-24X09:59:42Z' is not a date yyyy-MM-ddTHH:mm:ssZ"#,
        ],
    ),
    (
        "metadata-lib/invalid-valid-date-2.xml",
        &[
            r#"Err: invalid Marketplace entry: MMZu9WvwKIro-rtBQfDk4PsKO7_: dcterms:valid '2011-01-24T99:59:42Z' is not a date yyyy-MM-ddTHH:mm:ssZ"#,
        ],
    ),
    (
        "metadata-lib/partial-multiple-endorsements.xml",
        &[r#"Err: invalid Marketplace entry: more than one slreq:endorsement"#],
    ),
    (
        "metadata-lib/partial-multiple-signatures.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=Some("linux-with-my-apps") tag=None d=Some("A 32-bit ttylinux...") os=Some("ttylinux")/Some("9.7")/Some("i486") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=Some("2011-07-23T10:59:42Z") dep=Some("security issue with app") fmt=None/None bytes=Some(100) loc=["http://example.org/..."] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=Some("kvm") ports=[443]/[25] pub=Some("StratusLab") creator=None serial=Some(0) mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/valid-ca-signed.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=None d=None os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jim.tester@example.org") at=Some("2012-02-01T17:02:02Z") valid=Some("2012-03-05T14:12:57Z") dep=None fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/valid-full-alt-cimi.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=Some("linux-with-my-apps") tag=Some("linux-with-my-apps") d=Some("A 32-bit ttylinux...") os=Some("ttylinux")/Some("9.7")/Some("i486") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=Some("2011-07-23T10:59:42Z") dep=Some("security issue with app") fmt=None/None bytes=Some(100) loc=["http://example.org/..."] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=Some("kvm") ports=[443]/[25] pub=Some("StratusLab") creator=None serial=Some(0) mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/valid-full-signature.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=Some("linux-with-my-apps") tag=None d=Some("A 32-bit ttylinux...") os=Some("ttylinux")/Some("9.7")/Some("i486") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=Some("2011-07-23T10:59:42Z") dep=Some("security issue with app") fmt=None/None bytes=Some(100) loc=["http://example.org/..."] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=Some("kvm") ports=[443]/[25] pub=Some("StratusLab") creator=None serial=Some(0) mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/valid-full.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=Some("linux-with-my-apps") tag=None d=Some("A 32-bit ttylinux...") os=Some("ttylinux")/Some("9.7")/Some("i486") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=Some("2011-07-23T10:59:42Z") dep=Some("security issue with app") fmt=None/None bytes=Some(100) loc=["http://example.org/..."] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=Some("kvm") ports=[443]/[25] pub=Some("StratusLab") creator=None serial=Some(0) mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/valid-minimal-empty-endorsement.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=None at=None valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/valid-minimal-leading-zero-sha1.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("0c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/valid-minimal-signature.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "metadata-lib/valid-minimal.xml",
        &[
            r#"Ok: MMZu9WvwKIro-rtBQfDk4PsKO7_ t=None tag=None d=None os=None/None/None v=None by=Some("jane.tester@example.org") at=Some("2011-01-24T09:59:42Z") valid=None dep=None fmt=None/None bytes=Some(100) loc=[] sums=["SHA-1"] sha1=Some("c319bbd5afc0a22ba3eaed0507c39383ec28eeff") type=Some("machine")/None hv=None ports=[]/[] pub=None creator=None serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/invalid-special-characters-signature.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=None d=Some("Globus appliance built by IGE (Initiativ") os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2012-01-19T15:46:18Z") valid=Some("2012-03-05T14:12:57Z") dep=None fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid-alternative-deprecated-signed.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=Some("Alternative") d=Some("An image with an alternative tag") os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2014-08-17T15:16:48Z") valid=Some("2020-03-05T14:12:57Z") dep=Some("This is a test of deprecation") fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid-alternative-newid.xml",
        &[
            r#"Ok: F49uQGH1uwT4mG9Lqj2pYnWkApd t=None tag=Some("Alternative") d=Some("A new image with the same tag") os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("2.0") by=Some("jane.tester@example.org") at=Some("2014-05-04T16:49:03Z") valid=Some("2020-12-31T13:50:54Z") dep=None fmt=Some("raw")/Some("gz") bytes=Some(107374182400) loc=[] sums=["SHA-1"] sha1=Some("5e3db90187d6ec13e261bd2ea8f6a589d6900a5d") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid-alternative.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=Some("Alternative") d=Some("An image with an alternative tag") os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2014-05-04T16:47:11Z") valid=Some("2020-03-05T14:12:57Z") dep=None fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid-ca-signed.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=None d=None os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jim.tester@example.org") at=Some("2012-02-01T17:02:02Z") valid=Some("2012-03-05T14:12:57Z") dep=None fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid-expired-signature.xml",
        &[
            r#"Ok: Ce3uQbAaxJMbTBaCXWO2FZPRFTT t=None tag=None d=None os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2011-09-12T11:23:44Z") valid=Some("2011-09-10T11:23:02Z") dep=None fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("27b7b906c06b124c6d305a09758ed8564f4454d3") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid-indate-deprecated-signature.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=None d=None os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2014-03-08T14:10:17Z") valid=Some("2016-03-05T14:12:57Z") dep=Some("This is a test of deprecation") fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid-indate-newer-signature.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=None d=None os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2014-03-08T14:23:18Z") valid=Some("2016-03-05T14:12:57Z") dep=None fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid-indate-older-signature.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=None d=None os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2014-03-08T14:15:05Z") valid=Some("2014-03-05T14:12:57Z") dep=None fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid-indate-signature.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=None d=None os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2014-03-08T14:10:40Z") valid=Some("2016-03-05T14:12:57Z") dep=None fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid-two-locations.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=None d=None os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=Some("jane.tester@example.org") at=Some("2014-03-08T14:28:15Z") valid=Some("2016-03-05T14:12:57Z") dep=None fmt=Some("raw")/None bytes=Some(128) loc=["http://www.example.org/1234", "http://www.example2.org/5678"] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
    (
        "server-tests/valid.xml",
        &[
            r#"Ok: BEE8-MMAw-Lk_IgsEExAy3d9R8h t=None tag=None d=None os=Some("ttylinux")/Some("9.3")/Some("i686") v=Some("1.0") by=None at=None valid=Some("2014-03-05T14:12:57Z") dep=None fmt=Some("raw")/None bytes=Some(128) loc=[] sums=["MD5", "SHA-1", "SHA-256", "SHA-512"] sha1=Some("1104f3e30c030f8b93f220b04131032dddf51f21") type=Some("base")/Some("machine") hv=Some("kvm") ports=[]/[] pub=Some("StratusLab") creator=Some("Jane Tester") serial=None mismatch=false"#,
        ],
    ),
];
