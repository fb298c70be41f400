"""The local cloud's pdisk (spec §4.4) and Marketplace (spec §5.2-5.4) driven with plain HTTP
(``requests``), and its TLS (generated CA, client certificates).

pdisk bodies are compared with tests/fixtures/pdisk/golden/ (SYNTHETIC: rendered by hand from the
real FreeMarker templates, see that folder's SOURCES.md); Marketplace entries are the real
documents of tests/fixtures/marketplace/.
"""

from __future__ import annotations

import calendar
import re
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import requests
from helpers import FIXTURES

from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER, LocalCloud

GOLDEN = FIXTURES / "pdisk" / "golden"
MARKET = FIXTURES / "marketplace"
JSON = {"Accept": "application/json"}
XML = {"Accept": "application/xml"}
AUTH = (DEFAULT_USER, DEFAULT_PASSWORD)
REALM = 'Basic realm="StratusLab Password Realm"'
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def golden(name: str, **subst: str) -> str:
    text = (GOLDEN / name).read_bytes().decode("utf-8")
    for key, value in subst.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def disks_url(cloud: LocalCloud, site: str = "lal") -> str:
    """The pdisk base as the client builds it: endpoint + ``/pswd`` + ``/disks/``."""
    return cloud.endpoints(site)["pdisk"] + "/pswd/disks/"


def utc(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


@pytest.fixture
def users_cloud() -> Iterator[LocalCloud]:
    users = {"alice": "a-pw", "bob": "b-pw", "pdisk": "super-pw"}
    with LocalCloud(["lal"], users=users, boot_step=0) as cloud:
        yield cloud


def session(user: str, password: str) -> requests.Session:
    s = requests.Session()
    s.auth = (user, password)
    return s


def create(s: requests.Session, base: str, **form: str) -> str:
    r = s.post(base, data=form, headers=JSON)
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    assert r.text == golden("uuid-keyvalue.json", uuid=uuid)
    return str(uuid)


# =========================================================================== pdisk


def test_list_create_describe_delete(cloud: LocalCloud) -> None:
    s = session(*AUTH)
    base = disks_url(cloud)
    r = s.get(base, headers=JSON)
    assert (r.status_code, r.headers["Content-Type"], r.text) == (
        200,
        "application/json",
        golden("disks-empty.json"),
    )
    assert s.get(base.rstrip("/"), headers=JSON).text == golden("disks-empty.json")

    first = create(s, base, size="10", tag="data", visibility="private")
    assert UUID.match(first)
    second = create(s, base, size="3", visibility="PUBLIC")

    r = s.get(base + first + "/", headers=JSON)
    assert r.status_code == 200
    assert r.text == golden("disk-plain.json", uuid=first).replace('"joe"', '"alice"')
    assert s.get(base + first, headers=JSON).text == r.text
    assert s.get(base + second, headers=JSON).json() == {
        "uuid": second,
        "tag": "",
        "count": "0",
        "owner": "alice",
        "identifier": "",
        "size": "3",
        "type": "DATA_IMAGE_RAW_READ_WRITE",
        "visibility": "PUBLIC",
    }
    # Newest first; list items have no type/visibility.
    listing = s.get(base, headers=JSON).json()
    assert [d["uuid"] for d in listing] == [second, first]
    assert listing[1] == {
        "uuid": first,
        "tag": "data",
        "count": "0",
        "owner": "alice",
        "identifier": "",
        "size": "10",
    }

    r = s.head(base + first)
    assert (r.status_code, r.content) == (200, b"")
    assert s.head(base + "00000000-0000-4000-8000-000000000000").status_code == 404

    r = s.put(base + first, data={"tag": "renamed", "visibility": "public"}, headers=JSON)
    assert (r.status_code, r.content) == (204, b"")
    assert s.get(base + first, headers=JSON).json()["tag"] == "renamed"
    assert s.get(base + first, headers=JSON).json()["visibility"] == "PUBLIC"
    r = s.put(base + first, headers=JSON)
    assert (r.status_code, r.json()) == (400, {"message": "post with null entity", "code": 400})

    r = s.delete(base + first + "/", headers=JSON)
    assert (r.status_code, r.text) == (200, golden("uuid-keyvalue.json", uuid=first))
    assert [d["uuid"] for d in s.get(base, headers=JSON).json()] == [second]
    assert [d["uuid"] for d in cloud.disks("lal")] == [second]
    assert cloud.disks("grnet") == []


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"size": "0"}, 400, "Size must be an integer between 1 and 1024"),
        ({"size": "1025"}, 400, "Size must be an integer between 1 and 1024"),
        ({"tag": "no size"}, 400, "Size must be an integer between 1 and 1024"),
        ({"size": "ten"}, 400, 'Error parsing size: For input string: "ten"'),
        (
            {"size": "1", "visibility": "shared"},
            400,
            "Invalid value for form element visibility: No enum constant "
            "eu.stratuslab.storage.disk.resources.BaseResource.DiskVisibility.SHARED",
        ),
    ],
)
def test_create_errors_as_json_and_text(
    cloud: LocalCloud, form: dict[str, str], status: int, message: str
) -> None:
    s = session(*AUTH)
    r = s.post(disks_url(cloud), data=form, headers=JSON)
    assert (r.status_code, r.headers["Content-Type"]) == (status, "application/json")
    assert r.json() == {"message": message, "code": status}
    if form == {"size": "ten"}:
        assert r.text == golden("error-400-size.json")
    r = s.post(disks_url(cloud), data=form)
    assert (r.status_code, r.headers["Content-Type"]) == (status, "text/plain; charset=UTF-8")
    assert r.text == f"ERROR ({status}): {message}\n"
    assert cloud.disks("lal") == []


def test_identifier_clash_is_403(cloud: LocalCloud) -> None:
    s = session(*AUTH)
    create(s, disks_url(cloud), size="1", identifier="JcqGhHxmTRAEpHMmRF-xhSTM3TO")
    r = s.post(
        disks_url(cloud),
        data={"size": "1", "identifier": "JcqGhHxmTRAEpHMmRF-xhSTM3TO"},
        headers=JSON,
    )
    assert (r.status_code, r.json()) == (403, {"message": "Disk already registered", "code": 403})


def test_not_found_and_rights(users_cloud: LocalCloud) -> None:
    base = disks_url(users_cloud)
    alice, bob, su = session("alice", "a-pw"), session("bob", "b-pw"), session("pdisk", "super-pw")
    private = create(alice, base, size="1", tag="private")
    public = create(alice, base, size="2", tag="public", visibility="public")

    r = bob.get(base + "no-such-disk")
    assert (r.status_code, r.text) == (404, golden("error-404.txt"))
    r = bob.get(base + private, headers=JSON)
    assert r.status_code == 403
    assert r.json()["message"] == f"insufficient access rights to view disk ({private})"
    assert bob.head(base + private).status_code == 403
    # Public disks: anyone views, only owner or super-user deletes.
    assert bob.get(base + public, headers=JSON).json()["owner"] == "alice"
    r = bob.delete(base + public, headers=JSON)
    assert (r.status_code, r.json()["message"]) == (
        403,
        f"insufficient rights to delete disk ({public})",
    )
    # Listings hold one's own disks; the super-user sees all.
    assert bob.get(base, headers=JSON).json() == []
    assert [d["uuid"] for d in su.get(base, headers=JSON).json()] == [public, private]
    assert su.get(base + private, headers=JSON).status_code == 200
    assert su.delete(base + private, headers=JSON).status_code == 200

    r = requests.get(base, auth=("alice", "wrong"))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == REALM
    r = requests.get(base)
    assert r.status_code == 401


def _running_vm(cloud: LocalCloud) -> tuple[int, str]:
    """A running VM of site lal and its hypervisor host (from one.vm.info, as the client)."""
    cloud.seed("lal", vms=1)
    vm_id = cloud.vm_ids("lal")[-1]
    proxy = xmlrpc.client.ServerProxy(cloud.endpoints("lal")["rpc2"])
    ok, doc, _ = proxy.one.vm.info(f"{DEFAULT_USER}:{DEFAULT_PASSWORD}", vm_id)
    assert ok
    host = re.search(r"<HISTORY>.*<HOSTNAME>([^<]+)</HOSTNAME>", doc)
    assert host is not None
    return vm_id, host[1]


def test_hot_attach_and_detach(cloud: LocalCloud) -> None:
    s = session(*AUTH)
    base = disks_url(cloud)
    vm_id, node = _running_vm(cloud)
    uuid = create(s, base, size="5")
    r = s.get(base + uuid + "/mounts", headers=JSON)
    assert (r.status_code, r.text) == (200, golden("mounts-empty.json"))

    r = s.post(base + uuid + "/mounts/", data={"node": node, "vm_id": str(vm_id)}, headers=JSON)
    assert r.status_code == 200
    expected = golden("attach-200.json", uuid2=uuid).replace("node-1.example.org", node)
    assert r.text == expected.replace('"42"', f'"{vm_id}"').replace('"vdy"', '"vdz"')
    assert r.json()["target"] == "vdz"
    assert s.get(base + uuid, headers=JSON).json()["count"] == "1"
    assert s.get(base + uuid + "/mounts", headers=JSON).json() == [
        {"vmId": str(vm_id), "device": "vdz"}
    ]
    assert cloud.disks("lal")[0]["mounts"] == [{"vm_id": str(vm_id), "device": "vdz", "node": node}]

    r = s.post(base + uuid + "/mounts/", data={"node": node, "vm_id": str(vm_id)}, headers=JSON)
    assert (r.status_code, r.json()["message"]) == (
        403,
        f"Mount already exists for: {vm_id} and {uuid}",
    )
    for form, message in (
        ({"vm_id": str(vm_id)}, "missing node attribute"),
        ({"node": node}, "missing vm_id attribute"),
    ):
        r = s.post(base + uuid + "/mounts/", data=form, headers=JSON)
        assert (r.status_code, r.json()["message"]) == (400, message)
    r = s.post(base + uuid + "/mounts/", data={"node": "elsewhere", "vm_id": "9999"}, headers=JSON)
    assert (r.status_code, r.json()["message"]) == (
        500,
        "Unable to attach persistent disk: VM 9999 does not exist",
    )
    r = s.get(base + "unknown/mounts", headers=JSON)
    assert (r.status_code, r.json()["message"]) == (404, "Unknown disk: unknown")

    r = s.delete(base + uuid, headers=JSON)
    assert (r.status_code, r.json()["message"]) == (
        409,
        f"disk ({uuid}) is in use and can't be deleted",
    )

    mount_id = f"{uuid}_{vm_id}"
    r = s.delete(base + f"{uuid}/mounts/{mount_id}", headers=JSON)
    assert r.status_code == 200
    assert r.json() == {"diskId": uuid, "mountId": mount_id, "vmId": str(vm_id), "target": "vdz"}
    assert s.delete(base + f"{uuid}/mounts/{mount_id}", headers=JSON).status_code == 404
    assert s.get(base + uuid, headers=JSON).json()["count"] == "0"
    assert s.delete(base + uuid, headers=JSON).status_code == 200


def test_twenty_seventh_attach_is_409(cloud: LocalCloud) -> None:
    s = session(*AUTH)
    base = disks_url(cloud)
    vm_id, node = _running_vm(cloud)
    uuids = [create(s, base, size="1") for _ in range(27)]
    targets = []
    for uuid in uuids[:26]:
        r = s.post(base + uuid + "/mounts/", data={"node": node, "vm_id": str(vm_id)})
        assert r.status_code == 200, r.text
        targets.append(r.json()["target"])
    assert targets == [f"vd{chr(c)}" for c in range(ord("z"), ord("a") - 1, -1)]
    r = s.post(
        base + uuids[26] + "/mounts/", data={"node": node, "vm_id": str(vm_id)}, headers=JSON
    )
    assert (r.status_code, r.json()) == (409, {"message": "no free devices available", "code": 409})
    # Detaching one frees its device for the next attach.
    assert s.delete(base + f"{uuids[3]}/mounts/{uuids[3]}_{vm_id}").json()["target"] == "vdw"
    r = s.post(base + uuids[26] + "/mounts/", data={"node": node, "vm_id": str(vm_id)})
    assert (r.status_code, r.json()["target"]) == (200, "vdw")


def test_attach_needs_rights_and_a_running_vm_on_that_node(users_cloud: LocalCloud) -> None:
    base = disks_url(users_cloud)
    alice, bob = session("alice", "a-pw"), session("bob", "b-pw")
    users_cloud.seed("lal", vms=1, owner="alice")
    vm_id = users_cloud.vm_ids("lal")[0]
    private = create(alice, base, size="1")
    r = bob.post(base + private + "/mounts/", data={"node": "n", "vm_id": str(vm_id)}, headers=JSON)
    assert (r.status_code, r.json()["message"]) == (403, "Not enough rights to attach disk")
    r = alice.post(
        base + private + "/mounts/", data={"node": "wrong-node", "vm_id": str(vm_id)}, headers=JSON
    )
    assert (r.status_code, r.json()["message"]) == (
        500,
        f"Unable to attach persistent disk: VM {vm_id} does not run on node wrong-node",
    )
    # register_only records a boot-time mount without any hypervisor check.
    r = alice.post(
        base + private + "/mounts/",
        data={"node": "any", "vm_id": "77", "register_only": "true"},
        headers=JSON,
    )
    assert (r.status_code, r.json()["target"]) == (200, "static")


# =========================================================================== Marketplace

BEE8 = "BEE8-MMAw-Lk_IgsEExAy3d9R8h"
JANE = "jane.tester@example.org"
CERN = "Konstantin.Skaburskas@cern.ch"
JCQG = "JcqGhHxmTRAEpHMmRF-xhSTM3TO"
F49U = "F49uQGH1uwT4mG9Lqj2pYnWkApd"
CE3U = "Ce3uQbAaxJMbTBaCXWO2FZPRFTT"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DCTERMS = "http://purl.org/dc/terms/"
SLREQ = "http://mp.stratuslab.eu/slreq#"
NO_MATCH_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
    "<error>no metadata matching query found</error>"
)


@pytest.fixture
def market() -> Iterator[tuple[LocalCloud, str]]:
    """Real entries: five BEE8 versions by jane (latest: two-locations, created 14:28:15),
    an expired Ce3u entry, CERN's JcqG entry and jane's F49u; the clock at 2015-01-01."""
    with LocalCloud(["lal"], marketplace=False) as cloud:
        for name in (
            "server-tests/valid-indate-signature.xml",
            "server-tests/valid-indate-newer-signature.xml",
            "server-tests/valid-indate-older-signature.xml",
            "server-tests/valid-two-locations.xml",
            "server-tests/valid-expired-signature.xml",
            "client-resources/manifest-invalid-sha1.xml",
            "server-tests/valid-alternative-newid.xml",
        ):
            cloud.load_marketplace_file(MARKET / name)
        cloud.set_clock(utc("2015-01-01T00:00:00Z"))
        yield cloud, cloud.endpoints("lal")["marketplace"]


def listed(r: requests.Response) -> list[tuple[str, str, str]]:
    """(identifier, e-mail, endorsement date) of each entry of an XML listing."""
    assert (r.status_code, r.headers["Content-Type"]) == (200, "application/xml"), r.text
    assert r.text.startswith('<?xml version="1.0" encoding="UTF-8" standalone="no"?><metadata>')
    root = ElementTree.fromstring(r.content)
    out = []
    for entry in root.findall(f"{{{RDF}}}RDF"):
        ident = entry.findtext(f".//{{{DCTERMS}}}identifier")
        endorsement = entry.find(f".//{{{SLREQ}}}endorsement")
        assert ident is not None and endorsement is not None
        email = endorsement.findtext(f".//{{{SLREQ}}}email")
        created = endorsement.findtext(f"{{{DCTERMS}}}created")
        assert email is not None and created is not None
        out.append((ident, email, created))
    return out


def json_rows(r: requests.Response) -> list[tuple[str, str, str]]:
    assert (r.status_code, r.headers["Content-Type"]) == (200, "application/json")
    return [(row[7], row[4], row[6]) for row in r.json()["aaData"]]


LATEST_VALID = [
    (BEE8, JANE, "2014-03-08T14:28:15Z"),
    (JCQG, CERN, "2012-09-13T13:13:38Z"),
    (F49U, JANE, "2014-05-04T16:49:03Z"),
]


def test_listing_xml_and_json_forms(market: tuple[LocalCloud, str]) -> None:
    cloud, mp = market
    assert listed(requests.get(mp + "/metadata", headers=XML)) == LATEST_VALID
    assert listed(requests.get(mp + "/metadata/", headers=XML)) == LATEST_VALID
    # The global path without the /marketplace prefix serves the same catalog.
    assert listed(requests.get(cloud.base_url + "/metadata", headers=XML)) == LATEST_VALID
    for r in (
        requests.get(mp + "/metadata", params={"media": "json"}),
        requests.get(mp + "/metadata", headers=JSON),
    ):
        assert json_rows(r) == LATEST_VALID
        body = r.json()
        assert (body["iTotalRecords"], body["iTotalDisplayRecords"], body["rMsg"]) == (3, 3, "")
        assert body["aaData"][1] == [
            "",
            "fedora",
            "14",
            "i386",
            CERN,
            "machine",
            "2012-09-13T13:13:38Z",
            JCQG,
            "http://appliances.stratuslab.eu/images/base/ttylinux-9.7-i486-base/1.4/"
            "ttylinux-9.7-i486-base-1.4.qcow.gz",
            "dummy manifest to test sha1 mismatch.",
            "",
        ]


def test_status_filter_follows_the_clock(market: tuple[LocalCloud, str]) -> None:
    cloud, mp = market
    get = lambda **q: listed(requests.get(mp + "/metadata", params=q, headers=XML))  # noqa: E731
    assert get(status="valid") == LATEST_VALID
    assert get(status="expired") == [(CE3U, JANE, "2011-09-12T11:23:44Z")]
    assert get(status="deprecated") == []
    everything = [LATEST_VALID[0], (CE3U, JANE, "2011-09-12T11:23:44Z"), *LATEST_VALID[1:]]
    assert get(status="all") == everything
    assert get(status="anything-else") == everything
    # BEE8's latest version is valid until 2016-03-05T14:12:57Z.
    cloud.set_clock(utc("2016-03-05T14:12:58Z"))
    assert [e[0] for e in get()] == [JCQG, F49U]
    assert [e[0] for e in get(status="expired")] == [BEE8, CE3U]
    cloud.set_clock(None)  # the real clock: every real entry has expired
    assert requests.get(mp + "/metadata", headers=XML).text == (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?><metadata></metadata>'
    )


def test_deprecated_entries() -> None:
    with LocalCloud(["lal"], marketplace=False) as cloud:
        cloud.load_marketplace_file(MARKET / "server-tests/valid-indate-deprecated-signature.xml")
        cloud.set_clock(utc("2015-01-01T00:00:00Z"))
        mp = cloud.endpoints("lal")["marketplace"]
        assert listed(requests.get(mp + "/metadata", headers=XML)) == []
        assert listed(
            requests.get(mp + "/metadata", params={"status": "deprecated"}, headers=XML)
        ) == [(BEE8, JANE, "2014-03-08T14:10:17Z")]


def test_location_filter(market: tuple[LocalCloud, str], tmp_path: Path) -> None:
    cloud, mp = market
    # SYNTHETIC variant of a real entry: CERN's JcqG entry with its location moved to pdisk
    # (same coordinates, so it replaces the loaded one).
    real = (MARKET / "client-resources/manifest-invalid-sha1.xml").read_text(encoding="utf-8")
    moved = re.sub(
        r"<slterms:location>[^<]*</slterms:location>",
        "<slterms:location>pdisk:onehost-7.lal.in2p3.fr:8445:38a0738e</slterms:location>",
        real,
    )
    assert moved != real
    (tmp_path / "pdisk-entry.xml").write_text(moved, encoding="utf-8")
    assert cloud.load_marketplace_file(tmp_path / "pdisk-entry.xml") == JCQG
    get = lambda **q: [  # noqa: E731
        e[0] for e in listed(requests.get(mp + "/metadata", params=q, headers=XML))
    ]
    assert get(location="pdisk") == [JCQG]
    assert get(location="web") == [BEE8, F49U]  # an http location, no location
    assert get(location="all") == [BEE8, JCQG, F49U]
    assert get() == [BEE8, JCQG, F49U]


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("/metadata", {"identifier": BEE8}, [(BEE8, JANE, "2014-03-08T14:28:15Z")]),
        (
            "/metadata",
            {"email": JANE},
            [(BEE8, JANE, "2014-03-08T14:28:15Z"), (F49U, JANE, "2014-05-04T16:49:03Z")],
        ),
        ("/metadata", {"email": CERN}, [(JCQG, CERN, "2012-09-13T13:13:38Z")]),
        # A created filter selects that version, latest or not.
        ("/metadata", {"created": "2014-03-08T14:23:18Z"}, [(BEE8, JANE, "2014-03-08T14:23:18Z")]),
        (f"/metadata/{BEE8}", {}, [(BEE8, JANE, "2014-03-08T14:28:15Z")]),
        (f"/metadata/{CERN}", {}, [(JCQG, CERN, "2012-09-13T13:13:38Z")]),
        (f"/metadata/{BEE8}/{JANE}", {}, [(BEE8, JANE, "2014-03-08T14:28:15Z")]),
        (
            f"/metadata/{BEE8}/2014-03-08T14:23:18Z",
            {},
            [(BEE8, JANE, "2014-03-08T14:23:18Z")],
        ),
        (f"/metadata/{JANE}", {"identifier": F49U}, [(F49U, JANE, "2014-05-04T16:49:03Z")]),
    ],
)
def test_filters_as_query_parameters_and_path_arguments(
    market: tuple[LocalCloud, str], path: str, query: dict[str, str], expected: list[Any]
) -> None:
    _, mp = market
    assert listed(requests.get(mp + path, params=query, headers=XML)) == expected
    assert json_rows(requests.get(mp + path, params={**query, "media": "json"})) == expected


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/metadata/AAAAAAAAAAAAAAAAAAAAAAAAAAA", {}),
        ("/metadata", {"email": "nobody@example.org"}),
        ("/metadata", {"identifier": BEE8, "email": CERN}),
        # An older version that is not valid any more at the clock.
        ("/metadata", {"created": "2014-03-08T14:15:05Z"}),
        ("/metadata", {"identifier": CE3U}),
    ],
)
def test_filtered_empty_listing_is_404(
    market: tuple[LocalCloud, str], path: str, query: dict[str, str]
) -> None:
    _, mp = market
    r = requests.get(mp + path, params=query, headers=XML)
    assert (r.status_code, r.headers["Content-Type"], r.text) == (
        404,
        "application/xml",
        NO_MATCH_XML,
    )
    # The JSON form keeps 200 and says so in rMsg.
    r = requests.get(mp + path, params={**query, "media": "json", "sEcho": "7"})
    assert r.status_code == 200
    assert r.json() == {
        "sEcho": 7,
        "iTotalRecords": 3,
        "iTotalDisplayRecords": 0,
        "rMsg": "no metadata matching query found",
        "aaData": [],
    }


def test_single_entry(market: tuple[LocalCloud, str]) -> None:
    cloud, mp = market
    raw = (MARKET / "server-tests/valid-indate-older-signature.xml").read_bytes()
    # Any version, valid or not, by its full coordinates.
    for base in (mp, cloud.base_url):
        r = requests.get(f"{base}/metadata/{BEE8}/{JANE}/2014-03-08T14:15:05Z")
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/rdf+xml"
        assert r.headers["Content-Disposition"] == f"attachment; filename={BEE8}.xml"
        assert r.content == raw
    r = requests.get(f"{mp}/metadata/{CE3U}/{JANE}/2011-09-12T11:23:44Z")
    assert r.content == (MARKET / "server-tests/valid-expired-signature.xml").read_bytes()

    missing = f"{mp}/metadata/{BEE8}/{JANE}/2000-01-01T00:00:00Z"
    r = requests.get(missing, headers=XML)
    assert (r.status_code, r.text) == (
        404,
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
        "<error>metadata entry not found.\n</error>",
    )
    r = requests.get(missing, headers=JSON)
    assert (r.status_code, r.json()) == (404, {"404": "metadata entry not found.\n"})
    r = requests.get(missing)
    assert (r.status_code, r.headers["Content-Type"]) == (404, "text/html; charset=UTF-8")
    assert "metadata entry not found.\n" in r.text


def test_marketplace_is_read_only(market: tuple[LocalCloud, str]) -> None:
    _, mp = market
    r = requests.post(mp + "/metadata", data=b"<rdf:RDF/>", headers=XML)
    assert (r.status_code, r.headers["Allow"]) == (405, "GET, HEAD")


def test_seeded_synthetic_images_are_listed() -> None:
    with LocalCloud(["lal"], marketplace=False) as cloud:
        cloud.seed(images=5)
        rows = requests.get(cloud.endpoints("lal")["marketplace"] + "/metadata?media=json").json()
        assert rows["iTotalRecords"] == 5
        assert {row[4] for row in rows["aaData"]} == {"synthetic@localcloud.example.org"}


# =========================================================================== TLS


def test_tls_generated_ca_and_client_certificates() -> None:
    with LocalCloud(["lal"], tls=True) as cloud:
        ca = cloud.ca_file
        assert ca is not None
        assert Path(ca).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert cloud.base_url.startswith("https://127.0.0.1:")
        base = disks_url(cloud)
        assert requests.get(base, auth=AUTH, verify=ca, headers=JSON).json() == []
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(base, auth=AUTH)
        mp = cloud.endpoints("lal")["marketplace"]
        assert requests.get(mp + "/metadata", verify=ca).status_code == 200

        cert = cloud.issue_client_cert("carol")
        cert_base = base.replace("/pswd/", "/cert/")
        r = requests.post(cert_base, data={"size": "4"}, cert=cert, verify=ca, headers=JSON)
        assert r.status_code == 201
        listing = requests.get(cert_base, cert=cert, verify=ca, headers=JSON).json()
        # pdisk names the caller after the certificate's subject DN.
        assert [(d["owner"], d["size"]) for d in listing] == [
            ("CN=carol,O=StratusLab Local Cloud", "4")
        ]
        assert requests.get(cert_base, verify=ca).status_code == 403
        # Password users do not see carol's disk.
        assert requests.get(base, auth=AUTH, verify=ca, headers=JSON).json() == []


def test_client_certificates_need_tls(cloud: LocalCloud) -> None:
    from stratuslab_libcloud.errors import StratusLabError

    with pytest.raises((RuntimeError, StratusLabError)) as err:
        cloud.issue_client_cert("carol")
    assert "without TLS" in str(err.value)
