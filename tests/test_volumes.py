"""pdisk volumes end to end (issue 6): the driver against the two-site LocalCloud of conftest.

Every refused call is checked to change nothing on the server (``cloud.disks(site)`` before and
after) and, where the refusal is the driver's, to send nothing to pdisk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import wait_for
from libcloud.compute.base import Node, NodeAuthSSHKey, StorageVolume
from libcloud.compute.types import NodeState, StorageVolumeState

from stratuslab_libcloud import (
    LocalCloud,
    StratusLabNodeDriver,
    StratusLabProviderError,
    StratusLabStateError,
)
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
KEY = NodeAuthSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVolumeTestKey test@volumes")
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def running_node(driver: StratusLabNodeDriver, site: str = "lal", name: str = "vm") -> Node:
    image = driver.list_images(location=site)[0]
    node = driver.create_node(name, driver.list_sizes()[0], image, location=site, auth=KEY)
    wait_for(
        lambda: driver.ex_get_node(node.id).state == NodeState.RUNNING,
        what=f"{node.id} running",
    )
    return driver.ex_get_node(node.id)


def pdisk_posts(cloud: LocalCloud, site: str = "lal") -> int:
    return cloud.request_count(site, "pdisk", "POST /disks")


def only(volumes: list[StorageVolume], uuid: str) -> StorageVolume:
    (volume,) = [v for v in volumes if v.id == uuid]
    return volume


# ---------------------------------------------------------------- the whole life of a volume


def test_create_list_attach_detach_destroy(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    node = running_node(driver)
    volume = driver.create_volume(10, "data")
    assert UUID.match(volume.id)
    assert (volume.name, volume.size, volume.state) == ("data", 10, StorageVolumeState.AVAILABLE)
    assert volume.driver is driver
    # The creation reply is GET /disks/<uuid>/, which has type and visibility.
    assert volume.extra == {
        "location": "lal",
        "owner": "alice",
        "visibility": "PRIVATE",
        "type": "DATA_IMAGE_RAW_READ_WRITE",
        "identifier": "",
        "count": 0,
        "quarantine": None,
        "size_raw": 10,
        "mounts": [],
    }
    # The list template has neither type nor visibility.
    listed = only(driver.list_volumes(), volume.id)
    assert (listed.name, listed.size, listed.state) == ("data", 10, StorageVolumeState.AVAILABLE)
    assert listed.extra == {**volume.extra, "visibility": None, "type": None}

    assert driver.attach_volume(node, volume) is True
    assert volume.state == StorageVolumeState.INUSE
    assert (volume.extra["device"], volume.extra["node"], volume.extra["count"]) == (
        "vdz",
        node.id,
        1,
    )
    assert volume.extra["mounts"] == [(node.id, "vdz")]
    (disk,) = cloud.disks("lal")
    assert disk["mounts"] == [
        {"vm_id": str(node.extra["vm_id"]), "device": "vdz", "node": node.extra["host"]}
    ]

    listed = only(driver.list_volumes(), volume.id)
    assert listed.state == StorageVolumeState.INUSE
    assert (listed.extra["device"], listed.extra["node"], listed.extra["count"]) == (
        "vdz",
        node.id,
        1,
    )
    assert listed.extra["mounts"] == [(node.id, "vdz")]
    (listed_node,) = [n for n in driver.list_nodes() if n.id == node.id]
    assert listed_node.extra["volumes"] == {volume.id: "vdz"}

    before = cloud.disks("lal")
    with pytest.raises(StratusLabStateError) as err:  # in use: the state forbids it
        driver.destroy_volume(volume)
    assert err.value.http_code == 409
    assert err.value.site == "lal"
    assert err.value.operation == "destroy_volume (DELETE /disks/<uuid>)"
    assert str(err.value).endswith(
        f"pdisk answered HTTP 409: disk ({volume.id}) is in use and can't be deleted"
    )
    assert cloud.disks("lal") == before

    assert driver.detach_volume(volume) is True
    assert volume.state == StorageVolumeState.AVAILABLE
    assert "device" not in volume.extra and "node" not in volume.extra
    assert (volume.extra["count"], volume.extra["mounts"]) == (0, [])
    assert cloud.disks("lal")[0]["mounts"] == []
    (listed_node,) = [n for n in driver.list_nodes() if n.id == node.id]
    assert listed_node.extra["volumes"] == {}

    assert driver.destroy_volume(volume) is True
    assert driver.list_volumes() == []
    assert cloud.disks("lal") == []


def test_the_27th_attachment_has_no_free_device(
    cloud: LocalCloud, driver: StratusLabNodeDriver
) -> None:
    node = running_node(driver)
    volumes = [driver.create_volume(1, f"disk-{i}") for i in range(27)]
    devices = []
    for volume in volumes[:26]:
        driver.attach_volume(node, volume)
        devices.append(volume.extra["device"])
    # pdisk scans vdz down to vda.
    assert devices == [f"vd{chr(c)}" for c in range(ord("z"), ord("a") - 1, -1)]
    before = cloud.disks("lal")
    with pytest.raises(StratusLabProviderError) as err:
        driver.attach_volume(node, volumes[26])
    assert err.value.http_code == 409
    assert err.value.operation == "attach_volume (POST /disks/<uuid>/mounts/)"
    assert str(err.value).endswith("pdisk answered HTTP 409: no free devices available")
    assert cloud.disks("lal") == before
    assert volumes[26].state == StorageVolumeState.AVAILABLE
    assert "device" not in volumes[26].extra
    (listed,) = [n for n in driver.list_nodes() if n.id == node.id]
    assert sorted(listed.extra["volumes"].values()) == sorted(devices)


def test_volumes_of_one_site_never_appear_under_another(
    cloud: LocalCloud, driver: StratusLabNodeDriver
) -> None:
    lal = driver.create_volume(5, "at-lal")
    grnet = driver.create_volume(7, "at-grnet", location="grnet")
    assert grnet.extra["location"] == "grnet"
    assert [v.id for v in driver.list_volumes(ex_location="lal")] == [lal.id]
    assert [v.id for v in driver.list_volumes(ex_location="grnet")] == [grnet.id]
    loc = driver.list_locations()[1]
    assert [v.id for v in driver.list_volumes(ex_location=loc)] == [grnet.id]
    both = {v.id: (v.extra["location"], v.size) for v in driver.list_volumes()}
    assert both == {lal.id: ("lal", 5), grnet.id: ("grnet", 7)}
    assert [d["uuid"] for d in cloud.disks("lal")] == [lal.id]
    assert [d["uuid"] for d in cloud.disks("grnet")] == [grnet.id]


def test_newest_first_and_seeded_volumes(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    cloud.seed("grnet", volumes=3)
    first = driver.create_volume(1, "first", location="grnet")
    second = driver.create_volume(2, "second", location="grnet")
    listed = driver.list_volumes(ex_location="grnet")
    assert [(v.name, v.size) for v in listed] == [
        ("second", 2),
        ("first", 1),
        ("seed-2", 3),
        ("seed-1", 2),
        ("seed-0", 1),
    ]
    assert [v.id for v in listed[:2]] == [second.id, first.id]


# ---------------------------------------------------------------- numbers as pdisk writes them


def put_size(cloud: LocalCloud, site: str, uuid: str, size: int) -> None:
    """Sets a disk's size with the service's own PUT (which does not range-check it)."""
    url = f"{cloud.endpoints(site)['pdisk']}/pswd/disks/{uuid}"
    reply = requests.put(
        url,
        data={"size": str(size)},
        auth=(DEFAULT_USER, DEFAULT_PASSWORD),
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert reply.status_code == 204, reply.text


def test_sizes_with_thousands_separators(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    volume = driver.create_volume(1, "big")
    listing_url = f"{cloud.endpoints('lal')['pdisk']}/pswd/disks/"
    # 1000 GiB is written "1,000"; a size above 1024 is bytes ("1,500,000,000" → 2 GiB).
    for raw, text, gib in [
        (1000, '"1,000"', 1000),
        (1024, '"1,024"', 1024),
        (1_500_000_000, '"1,500,000,000"', 2),
        (1_073_741_824, '"1,073,741,824"', 1),
    ]:
        put_size(cloud, "lal", volume.id, raw)
        body = requests.get(
            listing_url,
            auth=(DEFAULT_USER, DEFAULT_PASSWORD),
            headers={"Accept": "application/json"},
            timeout=10,
        ).text
        assert f'"size": {text}' in body
        listed = only(driver.list_volumes(), volume.id)
        assert (listed.size, listed.extra["size_raw"]) == (gib, raw)


def test_the_largest_volume_is_1024_gib(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    volume = driver.create_volume(1024, "largest")
    assert volume.size == 1024
    assert only(driver.list_volumes(), volume.id).size == 1024
    assert cloud.disks("lal")[0]["size"] == 1024


# ---------------------------------------------------------------- bad inputs change nothing


@pytest.fixture
def unchanged(cloud: LocalCloud) -> Iterator[None]:
    """Asserts the test left both sites' disks as they were."""
    before = {site: cloud.disks(site) for site in cloud.sites}
    yield
    assert {site: cloud.disks(site) for site in cloud.sites} == before


@pytest.mark.parametrize("size", [0, 1025, -1, -(2**70), 2**70])
def test_create_volume_size_out_of_range(
    cloud: LocalCloud, driver: StratusLabNodeDriver, unchanged: None, size: int
) -> None:
    with pytest.raises(ValueError) as err:
        driver.create_volume(size, "data")
    assert str(err.value) == f"volume size must be between 1 and 1024 GiB, not {size}"
    assert pdisk_posts(cloud) == 0


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (1.5, "float 1.5"),
        (10.0, "float 10.0"),
        ("10", "str '10'"),
        (True, "bool True"),
        (None, "NoneType None"),
    ],
)
def test_create_volume_size_not_an_int(
    cloud: LocalCloud, driver: StratusLabNodeDriver, unchanged: None, size: Any, shown: str
) -> None:
    with pytest.raises(TypeError) as err:
        driver.create_volume(size, "data")
    assert str(err.value) == f"size must be an int number of GiB, not {shown}"
    assert pdisk_posts(cloud) == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "volume name must not be empty"),
        ("   ", "volume name must not be empty"),
        ("x" * 41, "volume name is 41 characters long; pdisk tags are at most 40"),
        ("é" * 41, "volume name is 41 characters long; pdisk tags are at most 40"),
    ],
)
def test_create_volume_bad_name(
    cloud: LocalCloud, driver: StratusLabNodeDriver, unchanged: None, name: str, message: str
) -> None:
    with pytest.raises(ValueError) as err:
        driver.create_volume(10, name)
    assert str(err.value) == message
    assert pdisk_posts(cloud) == 0


def test_create_volume_other_bad_arguments(
    cloud: LocalCloud, driver: StratusLabNodeDriver, unchanged: None
) -> None:
    with pytest.raises(TypeError, match="name must be a str, not int"):
        driver.create_volume(10, 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="visibility must be 'private' or 'public', not 'secret'"):
        driver.create_volume(10, "data", ex_visibility="secret")
    with pytest.raises(ValueError, match="unknown location 'nowhere'"):
        driver.create_volume(10, "data", location="nowhere")
    with pytest.raises(ValueError, match="cannot create a volume from a snapshot"):
        driver.create_volume(10, "data", snapshot=object())
    assert pdisk_posts(cloud) == 0


def test_name_limits_are_kept(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    longest = driver.create_volume(10, "é" * 40)
    assert longest.name == "é" * 40
    trimmed = driver.create_volume(10, "  spaced  ", ex_visibility="PUBLIC")
    assert (trimmed.name, trimmed.extra["visibility"]) == ("spaced", "PUBLIC")
    assert sorted(d["tag"] for d in cloud.disks("lal")) == sorted(["é" * 40, "spaced"])


def phantom(uuid: str, site: str = "lal") -> StorageVolume:
    return StorageVolume(id=uuid, name="ghost", size=1, driver=None, extra={"location": site})


def test_unknown_uuid(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    node = running_node(driver)
    driver.create_volume(1, "bystander")
    before = cloud.disks("lal")
    ghost = phantom(UNKNOWN)
    with pytest.raises(StratusLabProviderError) as err:
        driver.destroy_volume(ghost)
    assert err.value.http_code == 404
    assert str(err.value).endswith(f"pdisk answered HTTP 404: disk ({UNKNOWN}) does not exist")
    with pytest.raises(StratusLabProviderError) as err:
        driver.attach_volume(node, ghost)
    assert err.value.http_code == 404
    assert str(err.value).endswith(f"pdisk answered HTTP 404: Unknown disk: {UNKNOWN}")
    with pytest.raises(StratusLabProviderError) as err:
        driver.detach_volume(ghost)
    assert err.value.http_code == 404
    assert cloud.disks("lal") == before


@pytest.mark.parametrize("bad", ["../../one-proxy/xmlrpc", "a/b", "x?y=1", "", "%2e%2e"])
def test_a_volume_id_cannot_change_the_url(
    cloud: LocalCloud, driver: StratusLabNodeDriver, bad: str
) -> None:
    driver.create_volume(1, "bystander")
    before = cloud.disks("lal")
    with pytest.raises(ValueError, match="pdisk volume id"):
        driver.destroy_volume(phantom(bad))
    assert cloud.disks("lal") == before
    assert cloud.request_count("lal", "pdisk", "DELETE /disks") == 0


def test_attach_to_a_pending_node() -> None:
    with LocalCloud(sites=["lal"], boot_step=3600) as cloud:
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
        node = driver.create_node("slow", driver.list_sizes()[0], driver.list_images()[0], auth=KEY)
        volume = driver.create_volume(1, "data")
        before = cloud.disks("lal")
        # Refused by the node's state: a libcloud error, not a ValueError (issue 14).
        with pytest.raises(StratusLabStateError) as err:
            driver.attach_volume(node, volume)
        assert not isinstance(err.value, ValueError)
        assert str(err.value).endswith(
            f"VM {node.extra['vm_id']} is not in running state (Pending), so the "
            "volume cannot be attached"
        )
        assert (err.value.site, err.value.operation) == ("lal", "attach_volume (one.vm.info)")
        assert err.value.http_code is None and err.value.driver is driver
        assert cloud.disks("lal") == before
        assert cloud.request_count("lal", "pdisk", "POST /disks") == 1  # the creation only
        assert volume.state == StorageVolumeState.AVAILABLE


def test_attach_a_volume_of_another_site(
    cloud: LocalCloud, driver: StratusLabNodeDriver, unchanged: None
) -> None:
    node = running_node(driver)
    volume = driver.create_volume(1, "far", location="grnet")
    before = {site: cloud.disks(site) for site in cloud.sites}
    with pytest.raises(ValueError) as err:
        driver.attach_volume(node, volume)
    assert str(err.value) == f"volume {volume.id} is at site 'grnet' and node {node.id} at 'lal'"
    assert {site: cloud.disks(site) for site in cloud.sites} == before
    assert pdisk_posts(cloud, "grnet") == 1 and pdisk_posts(cloud, "lal") == 0
    driver.destroy_volume(volume)  # for `unchanged`


def test_attach_twice_and_detach_twice(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    node = running_node(driver)
    volume = driver.create_volume(1, "data")
    driver.attach_volume(node, volume)
    before = cloud.disks("lal")
    with pytest.raises(StratusLabProviderError) as err:
        driver.attach_volume(node, volume)
    assert err.value.http_code == 403
    assert str(err.value).endswith(
        f"pdisk answered HTTP 403: Mount already exists for: {node.extra['vm_id']} and {volume.id}"
    )
    assert cloud.disks("lal") == before
    assert volume.extra["count"] == 1

    driver.detach_volume(volume)
    before = cloud.disks("lal")
    with pytest.raises(StratusLabStateError) as verr:
        driver.detach_volume(volume)
    assert str(verr.value).endswith(f"volume {volume.id} is not attached to any node")
    assert verr.value.site == "lal"
    assert cloud.disks("lal") == before
    assert cloud.request_count("lal", "pdisk", "DELETE /disks") == 1


def test_volume_calls_need_a_volume_of_this_driver(
    cloud: LocalCloud, driver: StratusLabNodeDriver, unchanged: None
) -> None:
    with pytest.raises(TypeError, match="volume must be a StorageVolume, not str"):
        driver.destroy_volume(UNKNOWN)  # type: ignore[arg-type]
    no_site = StorageVolume(id=UNKNOWN, name="x", size=1, driver=None)
    with pytest.raises(ValueError, match=f"volume {UNKNOWN!r} has no location in its extra"):
        driver.destroy_volume(no_site)
    with pytest.raises(ValueError, match="unknown location 'elsewhere'"):
        driver.destroy_volume(phantom(UNKNOWN, site="elsewhere"))
    assert cloud.request_count("lal", "pdisk", "DELETE /disks") == 0
