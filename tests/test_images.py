"""Marketplace images end to end (issue 5): the driver against a LocalCloud whose Marketplace holds
REAL entries (tests/fixtures/marketplace/, see SOURCES.md) and an injected clock.

Every real sample's ``dcterms:valid`` lies in the past, so each test sets the Marketplace clock.
Documents marked DERIVED are real entries edited by a helper below (a field changed or added; the
signature then no longer matches): they are synthetic and named so.
"""

from __future__ import annotations

import http.server
import logging
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from libcloud.compute.base import NodeAuthSSHKey, NodeImage

from stratuslab_libcloud import (
    LocalCloud,
    StratusLabMalformedResponseError,
    StratusLabNodeDriver,
    StratusLabProviderError,
)

MP = Path(__file__).parent / "fixtures" / "marketplace"

JCQG = "JcqGhHxmTRAEpHMmRF-xhSTM3TO"  # client-resources/manifest-invalid-sha1.xml (CERN)
BEE8 = "BEE8-MMAw-Lk_IgsEExAy3d9R8h"  # server-tests/valid-*.xml (Jane and Jim Tester)
CE3U = "Ce3uQbAaxJMbTBaCXWO2FZPRFTT"  # server-tests/valid-expired-signature.xml
F49U = "F49uQGH1uwT4mG9Lqj2pYnWkApd"  # server-tests/valid-alternative-newid.xml
MMZU = "MMZu9WvwKIro-rtBQfDk4PsKO7_"  # metadata-lib/valid-full*.xml, client-tests/* (deprecated)

# Real entries the local Marketplace accepts (an entry needs an endorsement e-mail and date and a
# dcterms:valid to be served at all).
SERVABLE = [
    "client-resources/manifest-invalid-sha1.xml",
    "client-tests/hackers-full.xml",
    "metadata-lib/partial-multiple-signatures.xml",
    "metadata-lib/valid-ca-signed.xml",
    "metadata-lib/valid-full-alt-cimi.xml",
    "metadata-lib/valid-full-signature.xml",
    "metadata-lib/valid-full.xml",
    "server-tests/invalid-special-characters-signature.xml",
    "server-tests/valid-alternative-deprecated-signed.xml",
    "server-tests/valid-alternative-newid.xml",
    "server-tests/valid-alternative.xml",
    "server-tests/valid-ca-signed.xml",
    "server-tests/valid-expired-signature.xml",
    "server-tests/valid-indate-deprecated-signature.xml",
    "server-tests/valid-indate-newer-signature.xml",
    "server-tests/valid-indate-older-signature.xml",
    "server-tests/valid-indate-signature.xml",
    "server-tests/valid-two-locations.xml",
]
# Real listings (a <metadata> wrapper): their rdf:RDF entries are loaded one by one.
LISTINGS = ["client-tests/valid-single-entry.xml", "client-tests/valid-multiple-entries.xml"]

KEY = NodeAuthSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMarketplaceTestKey test@images")


def unix(date: str) -> int:
    """Unix seconds of a Marketplace date ``yyyy-MM-ddTHH:mm:ssZ``."""
    return int(
        datetime.strptime(date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    )


def real(name: str) -> str:
    return (MP / name).read_text(encoding="utf-8")


def listing_entries(name: str) -> list[str]:
    """The rdf:RDF documents of a real listing, each with the wrapper's XML declaration."""
    text = real(name)
    return [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + m
        for m in re.findall(r"<rdf:RDF\b.*?</rdf:RDF>", text, flags=re.S)
    ]


def derive(name: str, *edits: tuple[str, str]) -> str:
    """DERIVED (synthetic): a real entry with each ``old`` text replaced by ``new`` once."""
    text = real(name)
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} is not unique in {name}"
        text = text.replace(old, new)
    return text


def load(cloud: LocalCloud, tmp_path: Path, text: str, label: str) -> str:
    path = tmp_path / f"{label}.xml"
    path.write_text(text, encoding="utf-8")
    return cloud.load_marketplace_file(path)


@pytest.fixture
def mp_cloud() -> Iterator[LocalCloud]:
    """Two sites and an EMPTY Marketplace (no synthetic catalog)."""
    with LocalCloud(sites=["lal", "grnet"], boot_step=0.02, marketplace=False) as c:
        yield c


@pytest.fixture
def mp_driver(mp_cloud: LocalCloud) -> StratusLabNodeDriver:
    return StratusLabNodeDriver(ex_config_file=mp_cloud.config_file)


def ids(images: list[NodeImage]) -> list[str]:
    return [i.id for i in images]


# ---------------------------------------------------------------- every real entry, end to end


def test_every_servable_real_entry_lists_through_the_driver(
    mp_cloud: LocalCloud, mp_driver: StratusLabNodeDriver, tmp_path: Path
) -> None:
    loaded = [mp_cloud.load_marketplace_file(MP / name) for name in SERVABLE]
    for name in LISTINGS:
        for i, doc in enumerate(listing_entries(name)):
            loaded.append(load(mp_cloud, tmp_path, doc, f"{Path(name).stem}-{i}"))
    assert len(loaded) == 21
    mp_cloud.set_clock(0)  # 1970: before every dcterms:valid
    everything = mp_driver.list_images(ex_include_expired=True, ex_include_deprecated=True)
    assert sorted(ids(everything)) == sorted([JCQG, MMZU, BEE8, F49U, CE3U])
    # 1970: nothing is expired; what the default hides is exactly the deprecated identifiers
    # (MMZu has only deprecated entries; Jane's latest BEE8 entry is deprecated, Jim's is not).
    default = mp_driver.list_images()
    assert sorted(ids(default)) == sorted([JCQG, BEE8, F49U, CE3U])
    bee8 = next(i for i in default if i.id == BEE8)
    assert bee8.extra["endorser"]["email"] == "jim.tester@example.org"
    assert bee8.extra["created"] == "2012-02-01T17:02:02Z"


def test_every_real_document_the_marketplace_cannot_serve_is_refused_on_load(
    mp_cloud: LocalCloud,
) -> None:
    refused = sorted(
        str(p.relative_to(MP)) for p in MP.rglob("*.xml") if str(p.relative_to(MP)) not in SERVABLE
    )
    assert len(refused) == 41
    for name in refused:
        with pytest.raises(ValueError, match="the local Marketplace rejected the document"):
            mp_cloud.load_marketplace_file(MP / name)


# ------------------------------------------------------------ listing: valid, expired, deprecated


@pytest.fixture
def catalog(mp_cloud: LocalCloud) -> LocalCloud:
    """JcqG (CERN, fedora i386), Ce3u (valid until 2011-09-10T11:23:02Z), F49u (tag only),
    BEE8 by Jane (two locations) and MMZu (deprecated), all real."""
    for name in [
        "client-resources/manifest-invalid-sha1.xml",
        "server-tests/valid-expired-signature.xml",
        "server-tests/valid-alternative-newid.xml",
        "server-tests/valid-two-locations.xml",
        "metadata-lib/valid-full.xml",
    ]:
        mp_cloud.load_marketplace_file(MP / name)
    return mp_cloud


def test_default_listing_is_valid_and_not_deprecated(
    catalog: LocalCloud, mp_driver: StratusLabNodeDriver
) -> None:
    catalog.set_clock(unix("2011-09-01T00:00:00Z"))
    images = mp_driver.list_images()
    assert [(i.id, i.name) for i in images] == [
        (JCQG, "dummy manifest to test sha1 mismatch."),  # no title, no tag: the description
        (CE3U, CE3U),  # no title, tag or description: the identifier
        (F49U, "Alternative"),  # the tag
        (BEE8, BEE8),
    ]
    assert all(i.driver is mp_driver for i in images)
    # Both sites use the one Marketplace of the local cloud.
    assert ids(mp_driver.list_images(location="grnet")) == ids(images)


def test_expired_entries_only_with_ex_include_expired(
    catalog: LocalCloud, mp_driver: StratusLabNodeDriver
) -> None:
    catalog.set_clock(unix("2011-09-11T00:00:00Z"))  # after Ce3u's validity
    assert ids(mp_driver.list_images()) == [JCQG, F49U, BEE8]
    with_expired = mp_driver.list_images(ex_include_expired=True)
    assert ids(with_expired) == [JCQG, F49U, BEE8, CE3U]
    assert with_expired[-1].extra["valid_until"] == "2011-09-10T11:23:02Z"
    # Deprecated is not expired: MMZu stays out.
    assert MMZU not in ids(with_expired)


def test_deprecated_entries_only_with_ex_include_deprecated(
    catalog: LocalCloud, mp_driver: StratusLabNodeDriver
) -> None:
    catalog.set_clock(unix("2011-09-01T00:00:00Z"))
    images = mp_driver.list_images(ex_include_deprecated=True)
    assert ids(images) == [JCQG, CE3U, F49U, BEE8, MMZU]
    mmzu = images[-1]
    assert mmzu.name == "linux-with-my-apps"
    assert mmzu.extra["deprecated"] == "security issue with app"
    # A deprecated entry is listed whatever its date (MMZu's validity ended 2011-07-23).
    assert mmzu.extra["valid_until"] == "2011-07-23T10:59:42Z"


def test_filters_os_arch_endorser(catalog: LocalCloud, mp_driver: StratusLabNodeDriver) -> None:
    catalog.set_clock(unix("2011-09-01T00:00:00Z"))
    assert ids(mp_driver.list_images(ex_os="fedora")) == [JCQG]
    assert ids(mp_driver.list_images(ex_os="FEDORA", ex_arch="i386")) == [JCQG]
    assert ids(mp_driver.list_images(ex_os="fedora", ex_arch="x86_64")) == []
    assert ids(mp_driver.list_images(ex_arch="I686")) == [CE3U, F49U, BEE8]
    assert ids(mp_driver.list_images(ex_endorser="Konstantin.Skaburskas@cern.ch")) == [JCQG]
    assert ids(mp_driver.list_images(ex_endorser="jane.tester@example.org", ex_os="ttylinux")) == [
        CE3U,
        F49U,
        BEE8,
    ]
    # The server answers 404 "no metadata matching query found": an empty list, not an error.
    assert mp_driver.list_images(ex_endorser="nobody@example.org") == []


# ---------------------------------------------------------------- several endorsers and dates


def test_several_dates_of_one_endorser_collapse_to_the_latest(
    mp_cloud: LocalCloud, mp_driver: StratusLabNodeDriver
) -> None:
    for name in [
        "server-tests/valid-indate-signature.xml",  # endorsed 2014-03-08T14:10:40Z
        "server-tests/valid-indate-newer-signature.xml",  # 14:23:18Z
        "server-tests/valid-indate-older-signature.xml",  # 14:15:05Z, valid until 2014-03-05
    ]:
        mp_cloud.load_marketplace_file(MP / name)
    mp_cloud.set_clock(unix("2014-03-06T00:00:00Z"))
    images = mp_driver.list_images(ex_include_expired=True)
    assert [(i.id, i.extra["created"]) for i in images] == [(BEE8, "2014-03-08T14:23:18Z")]
    assert mp_driver.get_image(BEE8).extra["created"] == "2014-03-08T14:23:18Z"


def test_several_endorsers_collapse_to_the_newest_valid_entry(
    mp_cloud: LocalCloud, mp_driver: StratusLabNodeDriver, tmp_path: Path
) -> None:
    mp_cloud.load_marketplace_file(MP / "server-tests/valid-indate-newer-signature.xml")  # Jane
    mp_cloud.load_marketplace_file(MP / "server-tests/valid-ca-signed.xml")  # Jim, 2012-02-01
    mp_cloud.set_clock(unix("2012-02-15T00:00:00Z"))  # both valid: the newest endorsement wins
    (image,) = mp_driver.list_images()
    assert image.extra["endorser"]["email"] == "jane.tester@example.org"
    assert image.extra["created"] == "2014-03-08T14:23:18Z"
    (jim,) = mp_driver.list_images(ex_endorser="jim.tester@example.org")
    assert jim.extra["created"] == "2012-02-01T17:02:02Z"

    # DERIVED: Jim's entry endorsed later (2015) than Jane's, still valid only until 2012-03-05.
    load(
        mp_cloud,
        tmp_path,
        derive(
            "server-tests/valid-ca-signed.xml",
            ("2012-02-01T17:02:02Z", "2015-01-01T00:00:00Z"),
        ),
        "derived-jim-2015",
    )
    mp_cloud.set_clock(unix("2014-06-01T00:00:00Z"))  # Jim's newest is expired, Jane's valid
    for images in (mp_driver.list_images(), mp_driver.list_images(ex_include_expired=True)):
        assert [(i.id, i.extra["endorser"]["email"]) for i in images] == [
            (BEE8, "jane.tester@example.org")
        ]
    assert mp_driver.get_image(BEE8, ex_include_expired=True).extra["created"] == (
        "2014-03-08T14:23:18Z"
    )


def test_several_endorsers_from_a_real_listing(
    mp_cloud: LocalCloud, mp_driver: StratusLabNodeDriver, tmp_path: Path
) -> None:
    # valid-multiple-entries.xml: MMZu endorsed by two people at the same date (deprecated).
    for i, doc in enumerate(listing_entries("client-tests/valid-multiple-entries.xml")):
        load(mp_cloud, tmp_path, doc, f"multiple-{i}")
    mp_cloud.set_clock(0)
    (image,) = mp_driver.list_images(ex_include_deprecated=True)
    assert (image.id, image.name) == (MMZU, "linux-with-my-apps")
    assert image.extra["tag"] == "ttylinux"
    # Same date: the first in the server's listing order is kept.
    assert image.extra["endorser"]["email"] == "hackers@example.org"


# ---------------------------------------------------------------- get_image


def test_get_image_valid_then_any_with_ex_include_expired(
    catalog: LocalCloud, mp_driver: StratusLabNodeDriver
) -> None:
    catalog.set_clock(unix("2011-09-11T00:00:00Z"))
    assert mp_driver.get_image(JCQG).name == "dummy manifest to test sha1 mismatch."
    with pytest.raises(StratusLabProviderError) as err:
        mp_driver.get_image(CE3U)
    assert err.value.http_code == 404
    assert err.value.site == "lal"
    assert err.value.operation == "get_image (GET /metadata)"
    assert str(err.value).endswith(f"no valid Marketplace entry with identifier '{CE3U}'")
    expired = mp_driver.get_image(CE3U, ex_include_expired=True)
    assert (expired.id, expired.extra["valid_until"]) == (CE3U, "2011-09-10T11:23:02Z")
    deprecated = mp_driver.get_image(MMZU, ex_include_expired=True)
    assert deprecated.extra["deprecated"] == "security issue with app"
    assert mp_driver.get_image(JCQG, location="grnet").id == JCQG


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "JcqGhHxmTRAEpHMmRF-xhSTM3T",  # 26
        "JcqGhHxmTRAEpHMmRF-xhSTM3TOO",  # 28
        "JcqGhHxmTRAEpHMmRF+xhSTM3TO",  # '+' (standard base64) is not in the alphabet
        "JcqGhHxmTRAEpHMmRF/xhSTM3TO",
        "JcqGhHxmTRAEpHMmRF xhSTM3TO",
        "JcqGhHxmTRAEpHMmRF-xhSTM3T\u00d6",
    ],
)
def test_get_image_rejects_a_malformed_id_before_any_request(
    catalog: LocalCloud, mp_driver: StratusLabNodeDriver, bad: str
) -> None:
    with pytest.raises(ValueError) as err:
        mp_driver.get_image(bad)
    assert str(err.value) == (
        f"'{bad}' is not a Marketplace image identifier (27 characters of [A-Za-z0-9_-])"
    )
    assert catalog.request_count(None, "marketplace") == 0


def test_get_image_unknown_id(catalog: LocalCloud, mp_driver: StratusLabNodeDriver) -> None:
    catalog.set_clock(0)
    unknown = "AAAAAAAAAAAAAAAAAAAAAAAAAAA"
    for include_expired in (False, True):
        with pytest.raises(StratusLabProviderError) as err:
            mp_driver.get_image(unknown, ex_include_expired=include_expired)
        assert err.value.http_code == 404
        assert f"no valid Marketplace entry with identifier '{unknown}'" in str(err.value)


# ---------------------------------------------------------------- NodeImage golden values

COMMON_KEYS = {
    "os", "os_version", "arch", "version", "description", "tag", "endorser", "created",
    "valid_until", "deprecated", "format", "compression", "bytes", "checksums", "locations",
    "kind", "type", "hypervisor", "disks_bus", "inbound_ports", "publisher", "creator",
}  # fmt: skip


def test_golden_cern_entry(catalog: LocalCloud, mp_driver: StratusLabNodeDriver) -> None:
    catalog.set_clock(0)
    image = mp_driver.get_image(JCQG)
    assert (image.id, image.name) == (JCQG, "dummy manifest to test sha1 mismatch.")
    assert set(image.extra) >= COMMON_KEYS
    assert image.extra == {
        "title": None,
        "tag": None,
        "description": "dummy manifest to test sha1 mismatch.",
        "os": "fedora",
        "os_version": "14",
        "arch": "i386",
        "version": "0.1",
        "endorser": {
            "email": "Konstantin.Skaburskas@cern.ch",
            "subject": "CN=Konstantin Skaburskas,CN=658461,CN=kskaburs,OU=Users,"
            "OU=Organic Units,DC=cern,DC=ch",
            "issuer": "CN=CERN Trusted Certification Authority,DC=cern,DC=ch",
        },
        "created": "2012-09-13T13:13:38Z",
        "valid_until": "2020-12-31T00:00:00Z",
        "deprecated": None,
        "format": "raw",
        "compression": "gz",
        "bytes": 4,
        "checksums": {
            "MD5": "5c9597f3c8245907ea71a89d9d39d08e",
            "SHA-1": "972a1a11f19934401291cc99117ec614933374ce",
            "SHA-256": "17e682f060b5f8e47ea04c5c4855908b0a5ad612022260fe50e11ecb0cc0ab76",
            "SHA-512": "77e52614a141cef19a76de6193e9c845b8cffffecf4973653e5d7a5d121450fa"
            "b6142890e0f794715722ba4257ee28cb0f4e3966f18e11c9e62fa6babf0a748f",
        },
        "locations": [
            "http://appliances.stratuslab.eu/images/base/ttylinux-9.7-i486-base/1.4/"
            "ttylinux-9.7-i486-base-1.4.qcow.gz"
        ],
        "kind": "machine",
        "type": "base",
        "hypervisor": "kvm",
        "disks_bus": None,
        "inbound_ports": [],
        "outbound_ports": [],
        "publisher": "StratusLab",
        "creator": "Konstantin Skaburskas",
        "serial_number": None,
        "identifier_mismatch": False,
    }


def test_golden_deprecated_entry_with_title_and_tag(
    mp_cloud: LocalCloud, mp_driver: StratusLabNodeDriver, tmp_path: Path
) -> None:
    (doc,) = listing_entries("client-tests/valid-single-entry.xml")
    assert load(mp_cloud, tmp_path, doc, "single") == MMZU
    mp_cloud.set_clock(0)
    image = mp_driver.get_image(MMZU, ex_include_expired=True)
    assert (image.id, image.name) == (MMZU, "linux-with-my-apps")  # the title beats the tag
    assert image.extra == {
        "title": "linux-with-my-apps",
        "tag": "ttylinux",
        "description": "A 32-bit ttylinux...",
        "os": "ttylinux",
        "os_version": "9.7",
        "arch": "i486",
        "version": "1.0",
        "endorser": {
            "email": "airaj@lal.in2p3.fr",
            "subject": "CN=Jane Tester,OU=Testing Department,O=StratusLab Project,C=EU",
            "issuer": "CN=Jane Tester,OU=Testing Department,O=StratusLab Project,C=EU",
        },
        "created": "2011-01-24T09:59:42Z",
        "valid_until": "2011-07-23T10:59:42Z",
        "deprecated": "security issue with app",
        "format": None,
        "compression": "gz",
        "bytes": 100,
        "checksums": {"SHA-1": "c319bbd5afc0a22ba3eaed0507c39383ec28eeff"},
        "locations": ["http://example.org/..."],
        "kind": None,
        "type": "machine",
        "hypervisor": "kvm",
        "disks_bus": None,
        "inbound_ports": [443],
        "outbound_ports": [25],
        "publisher": "StratusLab",
        "creator": None,
        "serial_number": 0,
        "identifier_mismatch": False,
    }


def test_golden_two_location_entry(mp_cloud: LocalCloud, mp_driver: StratusLabNodeDriver) -> None:
    mp_cloud.load_marketplace_file(MP / "server-tests/valid-two-locations.xml")
    mp_cloud.set_clock(unix("2016-03-05T14:12:56Z"))  # one second before its validity ends
    (image,) = mp_driver.list_images()
    assert (image.id, image.name) == (BEE8, BEE8)  # empty description: the identifier
    expected = {
        "description": None,
        "compression": None,  # <dcterms:compression/>
        "locations": ["http://www.example.org/1234", "http://www.example2.org/5678"],
        "bytes": 128,
        "created": "2014-03-08T14:28:15Z",
        "valid_until": "2016-03-05T14:12:57Z",
        "endorser": {
            "email": "jane.tester@example.org",
            "subject": "CN=Jane Tester,OU=Testing Department,O=StratusLab Project,C=EU",
            "issuer": "CN=TestCA,OU=Test,O=StratusLab,C=EU",
        },
        "os": "ttylinux",
        "os_version": "9.3",
        "arch": "i686",
        "version": "1.0",
        "format": "raw",
        "creator": "Jane Tester",
    }
    assert {k: image.extra[k] for k in expected} == expected
    assert sorted(image.extra["checksums"]) == ["MD5", "SHA-1", "SHA-256", "SHA-512"]
    mp_cloud.set_clock(unix("2016-03-05T14:12:57Z"))  # at the end of validity: expired
    assert mp_driver.list_images() == []


def test_identifier_sha1_mismatch_is_flagged_and_logged(
    mp_cloud: LocalCloud,
    mp_driver: StratusLabNodeDriver,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # DERIVED: metadata-lib/invalid-inconsistent-checksum.xml (its SHA-1 ends ...eefe, the
    # identifier encodes ...eeff) with a dcterms:valid added, which the Marketplace requires.
    text = derive(
        "metadata-lib/invalid-inconsistent-checksum.xml",
        (
            "<dcterms:type>machine</dcterms:type>",
            "<dcterms:type>machine</dcterms:type>\n"
            "<dcterms:valid>2011-07-23T10:59:42Z</dcterms:valid>",
        ),
    )
    load(mp_cloud, tmp_path, text, "derived-mismatch")
    mp_cloud.load_marketplace_file(MP / "client-resources/manifest-invalid-sha1.xml")
    mp_cloud.set_clock(0)
    with caplog.at_level(logging.WARNING, logger="stratuslab_libcloud"):
        images = mp_driver.list_images()
    flags = {i.id: i.extra["identifier_mismatch"] for i in images}
    assert flags == {MMZU: True, JCQG: False}
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("stratuslab_libcloud")]
    assert messages == [
        f"Marketplace entry {MMZU}: identifier does not match its SHA-1 checksum "
        "c319bbd5afc0a22ba3eaed0507c39383ec28eefe"
    ]


# ------------------------------------------------------------ create_node from a Marketplace image


def wait_vm_count(cloud: LocalCloud, site: str) -> int:
    return len(cloud.vm_ids(site))


def disk_lines(template: str) -> str:
    """The root DISK block of a template, one attribute per line."""
    start = template.index("DISK = [")
    return template[start : template.index("]", start) + 1]


def test_create_node_from_a_real_raw_entry(
    catalog: LocalCloud, mp_driver: StratusLabNodeDriver
) -> None:
    catalog.set_clock(0)
    size = mp_driver.list_sizes()[0]
    node = mp_driver.create_node("from-cern", size, mp_driver.get_image(JCQG), auth=KEY)
    assert node.image is not None and node.image.id == JCQG
    template = catalog.vm_template("lal", node.extra["vm_id"])
    assert template is not None
    mp_url = catalog.endpoints("lal")["marketplace"]
    assert disk_lines(template) == (
        "DISK = [\n"
        f'source = "{mp_url}/metadata/{JCQG}",\n'
        'target = "hda",\n'
        "save = no,\n"
        'readonly = "no",\n'
        'driver = "raw",\n'
        'type = "fs"\n'
        "]"
    )
    assert "INBOUND_PORTS" not in template


def test_create_node_qcow2_virtio_and_inbound_ports_from_the_entry(
    mp_cloud: LocalCloud, mp_driver: StratusLabNodeDriver, tmp_path: Path
) -> None:
    # DERIVED: valid-two-locations.xml in qcow2, with a virtio disks bus and two inbound ports.
    text = derive(
        "server-tests/valid-two-locations.xml",
        ("<dcterms:format>raw</dcterms:format>", "<dcterms:format>qcow2</dcterms:format>"),
        (
            "<slterms:hypervisor>kvm</slterms:hypervisor>",
            "<slterms:hypervisor>kvm</slterms:hypervisor>\n"
            "        <slterms:disks-bus>virtio</slterms:disks-bus>\n"
            "        <slterms:inbound-port>22</slterms:inbound-port>\n"
            "        <slterms:inbound-port>8080</slterms:inbound-port>",
        ),
    )
    load(mp_cloud, tmp_path, text, "derived-qcow2")
    mp_cloud.set_clock(unix("2015-01-01T00:00:00Z"))
    image = mp_driver.get_image(BEE8)
    assert (image.extra["format"], image.extra["disks_bus"], image.extra["inbound_ports"]) == (
        "qcow2",
        "virtio",
        [22, 8080],
    )
    size = mp_driver.list_sizes()[0]
    node = mp_driver.create_node("qcow", size, image, location="grnet", auth=KEY)
    assert node.extra["location"] == "grnet"
    template = mp_cloud.vm_template("grnet", node.extra["vm_id"])
    assert template is not None
    mp_url = mp_cloud.endpoints("grnet")["marketplace"]
    root = disk_lines(template)
    assert f'source = "{mp_url}/metadata/{BEE8}",\n' in root
    assert 'target = "vda",\n' in root
    assert 'driver = "qcow2",\n' in root
    assert 'target = "vdb"' in template  # the swap disk follows the bus too
    assert 'INBOUND_PORTS = "22,8080"\n' in template
    # An explicit bus beats the entry's.
    node = mp_driver.create_node("ide", size, image, auth=KEY, ex_disks_bus="ide")
    template = mp_cloud.vm_template("lal", node.extra["vm_id"])
    assert template is not None and 'target = "hda",\n' in disk_lines(template)


def test_create_node_refuses_before_allocating(
    catalog: LocalCloud, mp_driver: StratusLabNodeDriver
) -> None:
    size = mp_driver.list_sizes()[0]
    catalog.set_clock(0)
    # Ce3u is valid in 1970 but lists no location.
    with pytest.raises(ValueError) as err:
        mp_driver.create_node("no-location", size, CE3U, auth=KEY)
    assert str(err.value) == (
        f"Image location(s) are not set in manifest for the image with ID {CE3U}"
    )
    # Expired or deprecated: no valid entry.
    catalog.set_clock(unix("2011-09-11T00:00:00Z"))
    for image in (CE3U, MMZU):
        with pytest.raises(StratusLabProviderError) as perr:
            mp_driver.create_node("expired", size, image, auth=KEY)
        assert perr.value.http_code == 404
        assert f"no valid Marketplace entry with identifier '{image}'" in str(perr.value)
    assert catalog.vm_ids("lal") == []
    assert catalog.request_count("lal", "compute", "one.vm.allocate") == 0


# ---------------------------------------------------------------- bad answers from the Marketplace


def test_malformed_truncated_and_error_statuses(
    catalog: LocalCloud, mp_driver: StratusLabNodeDriver
) -> None:
    catalog.set_clock(0)
    catalog.inject_fault("malformed", service="marketplace", times=1)
    with pytest.raises(StratusLabMalformedResponseError) as merr:
        mp_driver.list_images()
    assert merr.value.operation == "list_images (GET /metadata)"
    assert "malformed Marketplace document" in str(merr.value)

    catalog.inject_fault("truncated", service="marketplace", times=1)
    with pytest.raises(StratusLabMalformedResponseError):
        mp_driver.get_image(JCQG)

    for status in (404, 500):
        catalog.inject_fault("status", service="marketplace", status=status, times=1)
        with pytest.raises(StratusLabProviderError) as perr:
            mp_driver.list_images()
        # A 404 that is not "no metadata matching query found" is an error, not "no image".
        assert perr.value.http_code == status
        assert f"Marketplace answered HTTP {status}" in str(perr.value)
    assert len(mp_driver.list_images()) == 4


def test_empty_marketplace_lists_nothing(
    mp_cloud: LocalCloud, mp_driver: StratusLabNodeDriver
) -> None:
    assert mp_driver.list_images() == []
    assert mp_driver.list_images(ex_include_expired=True, ex_include_deprecated=True) == []
    with pytest.raises(StratusLabProviderError) as err:
        mp_driver.get_image(JCQG)
    assert err.value.http_code == 404


def test_huge_listing_of_ten_megabytes(
    catalog: LocalCloud, mp_driver: StratusLabNodeDriver
) -> None:
    catalog.inject_fault("huge", service="marketplace", size=10 * 1024 * 1024, times=1)
    # A well-formed 10 MiB listing holding only a comment: no image.
    assert mp_driver.list_images() == []


class _RawMarketplace(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the server's ``body`` (bytes) as application/xml."""

    body: bytes = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def raw_marketplace() -> Iterator[tuple[str, type[_RawMarketplace]]]:
    """A Marketplace stand-in on an ephemeral port serving documents the local cloud never would
    (its catalog validates what it stores)."""
    handler = type("Handler", (_RawMarketplace,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def wrap(*docs: str) -> bytes:
    body = "".join(re.sub(r"^<\?xml[^>]*\?>\s*", "", d) for d in docs)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?><metadata>' + body + "</metadata>"
    ).encode()


def test_unreadable_entries_are_skipped_with_a_warning(
    mp_cloud: LocalCloud,
    raw_marketplace: tuple[str, type[_RawMarketplace]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, handler = raw_marketplace
    driver = StratusLabNodeDriver(ex_config_file=mp_cloud.config_file, ex_marketplace_endpoint=url)
    good = real("client-resources/manifest-invalid-sha1.xml")
    no_identifier = real("metadata-lib/autogen-endorsement-done.xml")  # real, no identifier
    # DERIVED: the dcterms namespace bound to Dublin Core 1.1's URI (a classic mix-up).
    wrong_dcterms = derive(
        "server-tests/valid-two-locations.xml",
        (
            'xmlns:dcterms="http://purl.org/dc/terms/"',
            'xmlns:dcterms="http://purl.org/dc/elements/1.1/"',
        ),
    )
    # DERIVED: the rdf namespace misspelt, so the wrapper holds no rdf:RDF at all there.
    wrong_rdf = derive(
        "server-tests/valid-alternative-newid.xml",
        (
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"',
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns"',
        ),
    )
    handler.body = wrap(no_identifier, good, wrong_dcterms, wrong_rdf)
    with caplog.at_level(logging.WARNING, logger="stratuslab_libcloud"):
        images = driver.list_images()
    assert ids(images) == [JCQG]
    skipped = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("skipping an unreadable Marketplace entry")
    ]
    assert len(skipped) == 3
    assert "no dcterms:identifier" in skipped[0]
    assert "no dcterms:identifier" in skipped[1]
    assert "rdf:RDF" in skipped[2]

    # Asked for by identifier, an answer with no readable entry is a malformed reply.
    handler.body = wrap(wrong_dcterms)
    with pytest.raises(StratusLabMalformedResponseError) as err:
        driver.get_image(BEE8)
    assert "no dcterms:identifier" in str(err.value)


def test_not_xml_and_ten_megabyte_entry(
    mp_cloud: LocalCloud, raw_marketplace: tuple[str, type[_RawMarketplace]]
) -> None:
    url, handler = raw_marketplace
    driver = StratusLabNodeDriver(ex_config_file=mp_cloud.config_file, ex_marketplace_endpoint=url)
    handler.body = b"<metadata><rdf:RDF"
    with pytest.raises(StratusLabMalformedResponseError):
        driver.list_images()
    handler.body = b"<html><body>Service Temporarily Unavailable</body></html>"
    with pytest.raises(StratusLabMalformedResponseError):
        driver.list_images()
    # DERIVED: a real entry whose description is padded to 10 MB (the server's own upload limit
    # is 10240000 bytes): read like any other.
    padding = "x" * 10_000_000
    big = derive(
        "client-resources/manifest-invalid-sha1.xml",
        (
            "<dcterms:description>dummy manifest to test sha1 mismatch.</dcterms:description>",
            f"<dcterms:description>big image\n{padding}</dcterms:description>",
        ),
    )
    handler.body = wrap(big)
    (image,) = driver.list_images()
    assert (image.id, image.name) == (JCQG, "big image")
    assert len(image.extra["description"]) == len("big image\n") + 10_000_000


def test_a_listing_that_contradicts_its_status_is_checked(
    mp_cloud: LocalCloud,
    raw_marketplace: tuple[str, type[_RawMarketplace]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server's filtering is trusted but checked: a deprecated entry served as valid (this
    stand-in ignores ``status``) is dropped with a warning, and kept when deprecated ones are
    asked for."""
    url, handler = raw_marketplace
    driver = StratusLabNodeDriver(ex_config_file=mp_cloud.config_file, ex_marketplace_endpoint=url)
    good = real("client-resources/manifest-invalid-sha1.xml")
    deprecated = real("metadata-lib/valid-full.xml")
    handler.body = wrap(good, deprecated)
    with caplog.at_level(logging.WARNING, logger="stratuslab_libcloud"):
        assert ids(driver.list_images()) == [JCQG]
    assert any(
        MMZU in r.getMessage() and "says otherwise" in r.getMessage() for r in caplog.records
    )
    assert MMZU in ids(driver.list_images(ex_include_deprecated=True))


# ---------------------------------------------------------------- large listings


def test_a_large_listing_is_built_piece_by_piece_in_listing_order(
    mp_cloud: LocalCloud, mp_driver: StratusLabNodeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 3,000 synthetic entries make a listing of several MB: its images are built while the
    # rest is read, in listing order, one per identifier.
    mp_cloud.seed(images=3000)
    images = mp_driver.list_images()
    assert len(images) == len({i.id for i in images}) >= 3000
    again = mp_driver.list_images(ex_include_expired=True, ex_include_deprecated=True)
    assert ids(again)[: len(images)] == ids(images)

    built: list[str] = []
    original = mp_driver._image_from

    def failing(image_id: str, name: str, extra: dict[str, object]) -> NodeImage:
        if len(built) == 1000:
            raise RuntimeError("built enough")
        built.append(image_id)
        return original(image_id, name, extra)

    monkeypatch.setattr(mp_driver, "_image_from", failing)
    with pytest.raises(RuntimeError, match="built enough"):
        mp_driver.list_images()
    monkeypatch.undo()
    assert ids(mp_driver.list_images()) == ids(images)
