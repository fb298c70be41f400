"""Compute end to end against a two-site local cloud: listings (empty, many, mixed states), the
node lifecycle per OpenNebula version knob, site-unique ids, one site down, and bad inputs that
must fail before anything is created."""

from __future__ import annotations

import gc
import hashlib
import threading
import warnings
import xml.etree.ElementTree as ET
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from libcloud.common.types import LibcloudError
from libcloud.compute.base import Node, NodeAuthSSHKey, NodeImage, NodeSize
from libcloud.compute.drivers.dummy import DummyNodeDriver
from libcloud.compute.types import NodeState

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
from stratuslab_libcloud.errors import (
    StratusLabConnectionError,
    StratusLabNotFoundError,
    StratusLabProviderError,
    StratusLabSiteWarning,
    StratusLabStateError,
)
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

SITES = ["lal", "grnet"]

# OpenNebula (STATE, LCM_STATE) numbers used below.
RUNNING = (3, 3)
POWEROFF = (8, 0)
STOPPED = (4, 0)
DONE = (6, 0)
FAILED = (7, 0)

# What every seeded VM of the local cloud is (its SEED_TEMPLATE): 1 VCPU, 256 MiB, 128 MiB swap,
# image-repository image "ttylinux", a lease on the "private" network (10.1.0.1 onwards), placed
# on the site's hosts node-1 and node-2 in turn.
SEED_SIZE = ("custom-1cpu-256mib-128swap", 256, 1)

# First address of each site's networks: the local cloud gives every site its own slice (public:
# 100 addresses from 192.0.2.10, private: 20,000 from 10.1.0.1, in site order).
FIRST_PRIVATE = {"lal": "10.1.0.1", "grnet": "10.1.78.33"}
FIRST_PUBLIC = {"lal": "192.0.2.10", "grnet": "192.0.2.110"}


def make_driver(cloud: LocalCloud) -> StratusLabNodeDriver:
    return StratusLabNodeDriver(ex_config_file=cloud.config_file)


def small(driver: StratusLabNodeDriver) -> NodeSize:
    return next(s for s in driver.list_sizes() if s.id == "t1.micro")


def image(driver: StratusLabNodeDriver) -> NodeImage:
    return driver.list_images()[0]


def running(driver: StratusLabNodeDriver, *nodes: Node) -> list[Node]:
    done = driver.wait_until_running(list(nodes), wait_period=0.02, timeout=20)
    return [n for n, _ips in done]


def state_becomes(cloud: LocalCloud, site: str, vm: int, want: tuple[int, int]) -> None:
    wait_for(lambda: cloud.vm_state(site, vm) == want, timeout=20, what=f"VM {vm} {want}")


def by_id(nodes: list[Node]) -> dict[str, Node]:
    return {n.id: n for n in nodes}


# ---------------------------------------------------------------------------------------- lists


def test_list_nodes_of_an_empty_cloud_is_empty_without_warnings(
    driver: StratusLabNodeDriver,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert driver.list_nodes() == []
        assert driver.list_nodes(ex_location="grnet") == []
        assert driver.list_nodes(ex_strict=True) == []


def test_list_nodes_many_at_both_sites(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    cloud.seed("lal", vms=30)
    cloud.seed("grnet", vms=20)
    nodes = driver.list_nodes()
    assert len(nodes) == 50
    assert sorted(n.id for n in nodes) == sorted(
        [f"{i}@lal" for i in range(30)] + [f"{i}@grnet" for i in range(20)]
    )
    # libcloud's uuid is sha1("<id>:<type>"); ids are site-unique, so uuids are too.
    assert len({n.uuid for n in nodes}) == 50
    ids = by_id(nodes)
    zero_lal, zero_grnet = ids["0@lal"], ids["0@grnet"]
    assert zero_lal.uuid == hashlib.sha1(b"0@lal:stratuslab").hexdigest()
    assert zero_grnet.uuid == hashlib.sha1(b"0@grnet:stratuslab").hexdigest()
    for site, n in (("lal", zero_lal), ("grnet", zero_grnet)):
        assert n.name == "one-0"
        assert n.state == NodeState.RUNNING
        assert n.public_ips == []
        assert n.private_ips == [FIRST_PRIVATE[site]]
        assert n.extra["location"] == site
        assert n.extra["vm_id"] == 0
        assert n.extra["host"] == f"node-1.{site}.localcloud"
        assert n.extra["owner"] == "alice"
        assert n.extra["summary"] == "Running"
        assert n.size is not None
        assert (n.size.id, n.size.ram, n.size.extra["cpu"]) == SEED_SIZE
        assert n.size.extra["swap_mib"] == 128
        assert n.image is not None
        assert n.image.id == "ttylinux"
        assert n.created_at is not None
    assert ids["29@lal"].private_ips == ["10.1.0.30"]
    only_grnet = driver.list_nodes(ex_location="grnet")
    assert sorted(n.id for n in only_grnet) == sorted(f"{i}@grnet" for i in range(20))


def test_list_nodes_large_pools_in_site_and_pool_order(
    cloud: LocalCloud, driver: StratusLabNodeDriver
) -> None:
    # 1,500 VMs make a pool reply of several MB: its nodes are built piece by piece while the
    # rest is read, and the list still comes in site order, then pool order.
    cloud.seed("lal", vms=1500)
    cloud.seed("grnet", vms=700)
    nodes = driver.list_nodes()
    assert [n.id for n in nodes] == [f"{i}@lal" for i in range(1500)] + [
        f"{i}@grnet" for i in range(700)
    ]
    assert len({id(n.extra) for n in nodes}) == len(nodes)
    assert nodes[1499].extra["vm_id"] == 1499
    assert nodes[1499].private_ips == ["10.1.5.220"]
    assert [n.id for n in driver.list_nodes(ex_location="grnet")] == [
        f"{i}@grnet" for i in range(700)
    ]


def test_list_nodes_an_error_while_building_reaches_the_caller(
    cloud: LocalCloud, driver: StratusLabNodeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.seed("lal", vms=1200)
    built = []
    original = driver._node_from

    def failing(*record: object) -> object:
        if len(built) == 1000:
            raise RuntimeError("built enough")
        built.append(record)
        return original(*record)

    monkeypatch.setattr(driver, "_node_from", failing)
    with pytest.raises(RuntimeError, match="built enough"):
        driver.list_nodes()
    monkeypatch.undo()
    assert len(driver.list_nodes()) == 1200
    assert gc.isenabled()


def test_list_nodes_leaves_a_gc_the_user_disabled_disabled(
    cloud: LocalCloud, driver: StratusLabNodeDriver
) -> None:
    cloud.seed("lal", vms=3)
    gc.disable()
    try:
        assert len(driver.list_nodes()) == 3
        assert len(driver.list_images()) > 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_concurrent_listings_keep_the_gc_paused_until_the_last_ends(
    cloud: LocalCloud, driver: StratusLabNodeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # First lists and holds its pause; second starts inside it; first ends while second is
    # still building: the collector must stay paused until second ends too.
    cloud.seed("lal", vms=2)
    original = driver._node_from
    first_paused, second_paused, first_done = (threading.Event() for _ in range(3))
    seen: dict[str, bool] = {}

    def build(*record: Any) -> Node:
        name = threading.current_thread().name
        if name == "first" and not first_paused.is_set():
            first_paused.set()
            assert second_paused.wait(30)
        elif name == "second" and not second_paused.is_set():
            second_paused.set()
            assert first_done.wait(30)
            seen["second, after first ended"] = gc.isenabled()
        return original(*record)

    monkeypatch.setattr(driver, "_node_from", build)
    results: dict[str, int] = {}

    def listing() -> None:
        results[threading.current_thread().name] = len(driver.list_nodes(ex_location="lal"))
        if threading.current_thread().name == "first":
            first_done.set()

    first = threading.Thread(target=listing, name="first")
    second = threading.Thread(target=listing, name="second")
    first.start()
    assert first_paused.wait(30)
    second.start()
    first.join(60)
    second.join(60)
    assert results == {"first": 2, "second": 2}
    assert seen == {"second, after first ended": False}
    assert gc.isenabled()


def test_list_nodes_mixed_states() -> None:
    # A slow boot step keeps a fresh VM PENDING long enough to list it.
    with LocalCloud(sites=SITES, boot_step=1.0) as cloud:
        driver = make_driver(cloud)
        cloud.seed("lal", vms=4)
        nodes = by_id(driver.list_nodes())
        driver.stop_node(nodes["1@lal"])
        cloud.fail_vm("lal", 2, "Error executing image transfer script: cannot fetch the image")
        driver.destroy_node(nodes["3@lal"])
        assert cloud.vm_state("lal", 3) == DONE
        state_becomes(cloud, "lal", 1, POWEROFF)
        fresh = driver.create_node(
            name="fresh",
            size=small(driver),
            image=image(driver),
            location="grnet",
            auth=NodeAuthSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA mixed@test"),
        )
        assert fresh.state == NodeState.PENDING
        listed = by_id(driver.list_nodes())
        assert sorted(listed) == ["0@grnet", "0@lal", "1@lal", "2@lal"]
        assert listed["0@lal"].state == NodeState.RUNNING
        assert listed["1@lal"].state == NodeState.STOPPED
        assert listed["1@lal"].extra["state_name"] == "POWEROFF"
        assert listed["1@lal"].extra["summary"] == "Poweroff"
        assert listed["2@lal"].state == NodeState.ERROR
        assert listed["2@lal"].extra["state_name"] == "FAILED"
        assert listed["2@lal"].extra["summary"] == "Failed"
        assert (
            listed["2@lal"].extra["error_message"]
            == "Error executing image transfer script: cannot fetch the image"
        )
        assert listed["0@grnet"].state == NodeState.PENDING
        assert listed["0@grnet"].name == "fresh"
        assert listed["0@grnet"].extra["host"] is None
        # The public lease is taken at allocation time, before the VM runs.
        assert listed["0@grnet"].public_ips == [FIRST_PUBLIC["grnet"]]
        # A DONE VM is not listed, but can still be read.
        gone = driver.ex_get_node("3@lal")
        assert gone.state == NodeState.TERMINATED


def test_ex_get_node_reads_one_vm(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    cloud.seed("grnet", vms=2)
    node = driver.ex_get_node("1@grnet")
    assert (node.id, node.name, node.state) == ("1@grnet", "one-1", NodeState.RUNNING)
    assert node.private_ips == ["10.1.78.34"]
    with pytest.raises(StratusLabProviderError) as info:
        driver.ex_get_node("7@grnet")
    assert info.value.service_code == 1024
    assert "[VirtualMachineInfo] Error getting virtual machine [7]." in str(info.value)
    assert info.value.site == "grnet"


# ---------------------------------------------------------------------------------- lifecycle


@pytest.fixture(params=["3.2", "3.8", "4.x", "5.x"])
def versioned(request: pytest.FixtureRequest) -> Iterator[tuple[str, LocalCloud]]:
    with LocalCloud(sites=SITES, boot_step=0.02, version=request.param) as cloud:
        yield request.param, cloud


def test_lifecycle_per_version(versioned: tuple[str, LocalCloud], ssh_public_key: str) -> None:
    version, cloud = versioned
    driver = make_driver(cloud)
    node = driver.create_node(
        name="lifecycle",
        size=small(driver),
        image=image(driver),
        location="grnet",
        auth=NodeAuthSSHKey(ssh_public_key),
    )
    assert (node.id, node.name, node.state) == ("0@grnet", "lifecycle", NodeState.PENDING)
    assert node.public_ips == [FIRST_PUBLIC["grnet"]]
    (node,) = running(driver, node)
    assert node.state == NodeState.RUNNING
    assert node.extra["host"] == "node-1.grnet.localcloud"
    actions = cloud.request_count("grnet", "compute", "one.vm.action")

    # Every version, 3.2 included (its daemon has `reboot`; issue 14 item 15).
    assert driver.reboot_node(node) is True
    assert cloud.vm_state("grnet", 0) == RUNNING
    assert cloud.request_count("grnet", "compute", "one.vm.action") == actions + 1

    assert driver.stop_node(node) is True
    parked = STOPPED if version == "3.2" else POWEROFF
    state_becomes(cloud, "grnet", 0, parked)
    assert driver.ex_get_node(node.id).state == NodeState.STOPPED

    assert driver.start_node(node) is True
    (node,) = running(driver, node)
    assert cloud.vm_state("grnet", 0) == RUNNING

    assert driver.destroy_node(node) is True
    state_becomes(cloud, "grnet", 0, DONE)
    assert driver.list_nodes() == []
    assert cloud.vm_ids("grnet") == [0]
    assert cloud.vm_ids("lal") == []


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("3.8", "[VirtualMachineAction] Wrong state to perform action"),
        (
            "5.x",
            '[one.vm.action] Error performing action "reboot": This action is not available '
            "for state POWEROFF",
        ),
    ],
)
def test_an_action_in_the_wrong_state_is_the_daemons_refusal(
    version: str, message: str, ssh_public_key: str
) -> None:
    with LocalCloud(sites=SITES, boot_step=0.02, version=version) as cloud:
        driver = make_driver(cloud)
        node = driver.create_node(
            name="w", size=small(driver), image=image(driver), auth=NodeAuthSSHKey(ssh_public_key)
        )
        running(driver, node)
        driver.stop_node(node)
        state_becomes(cloud, "lal", 0, POWEROFF)
        with pytest.raises(StratusLabProviderError) as info:
            driver.reboot_node(node)
        err = info.value
        assert isinstance(err, StratusLabStateError)  # OpenNebula's ACTION error
        assert err.service_code == 2048
        assert err.http_code is None
        assert err.site == "lal"
        assert err.operation == "reboot_node (one.vm.action reboot)"
        assert err.endpoint == cloud.endpoints("lal")["compute"].replace(
            "/one-proxy/xmlrpc", "/one-proxy/pswd/xmlrpc"
        )
        assert str(err) == (
            f"site 'lal', reboot_node (one.vm.action reboot) at {err.endpoint}: "
            f"OpenNebula refused (code 2048): {message}"
        )
        assert cloud.vm_state("lal", 0) == POWEROFF


def test_vm_zero_at_two_sites_are_two_nodes(
    cloud: LocalCloud, driver: StratusLabNodeDriver, ssh_public_key: str
) -> None:
    auth = NodeAuthSSHKey(ssh_public_key)
    a = driver.create_node(
        name="twin", size=small(driver), image=image(driver), location="lal", auth=auth
    )
    b = driver.create_node(
        name="twin", size=small(driver), image=image(driver), location="grnet", auth=auth
    )
    assert (a.extra["vm_id"], b.extra["vm_id"]) == (0, 0)
    assert (a.id, b.id) == ("0@lal", "0@grnet")
    assert a.uuid != b.uuid
    # libcloud matches nodes by uuid: with colliding uuids this raises "multiple nodes".
    done = running(driver, a, b)
    assert [n.id for n in done] == ["0@lal", "0@grnet"]
    driver.destroy_node(a)
    assert [n.id for n in driver.list_nodes()] == ["0@grnet"]
    assert cloud.vm_state("grnet", 0) == RUNNING


# ------------------------------------------------------------------------------ one site down


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [("drop", None, StratusLabConnectionError), ("status", 503, StratusLabProviderError)],
)
def test_one_site_down_still_lists_the_other(
    cloud: LocalCloud,
    driver: StratusLabNodeDriver,
    kind: str,
    status: int | None,
    error: type[Exception],
) -> None:
    cloud.seed("lal", vms=3)
    cloud.seed("grnet", vms=2)
    cloud.inject_fault(kind, site="grnet", service="compute", status=status)
    with pytest.warns(StratusLabSiteWarning) as caught:
        nodes = driver.list_nodes()
    assert sorted(n.id for n in nodes) == ["0@lal", "1@lal", "2@lal"]
    assert len(caught) == 1
    text = str(caught[0].message)
    assert text.startswith("list_nodes: site 'grnet' failed and is left out: site 'grnet', ")
    assert "list_nodes (one.vmpool.info)" in text
    with pytest.raises(error) as info:
        driver.list_nodes(ex_strict=True)
    assert info.value.site == "grnet"  # type: ignore[attr-defined]
    if status is not None:
        assert info.value.http_code == status  # type: ignore[attr-defined]
    # The healthy site alone needs no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(driver.list_nodes(ex_location="lal")) == 3
    cloud.clear_faults()
    assert len(driver.list_nodes(ex_strict=True)) == 5


# -------------------------------------------------------------------------------- bad inputs


def snapshot(cloud: LocalCloud) -> tuple[list[int], list[int], int, int]:
    return (
        cloud.vm_ids("lal"),
        cloud.vm_ids("grnet"),
        cloud.request_count("lal", "compute", "one.vm.allocate"),
        cloud.request_count("grnet", "compute", "one.vm.allocate"),
    )


@pytest.fixture
def seeded(cloud: LocalCloud, driver: StratusLabNodeDriver) -> StratusLabNodeDriver:
    cloud.seed("lal", vms=1)
    cloud.seed("grnet", vms=1)
    return driver


def test_bad_create_inputs_fail_before_anything_is_created(
    cloud: LocalCloud, seeded: StratusLabNodeDriver, tmp_path: Path, ssh_public_key: str
) -> None:
    driver = seeded
    auth = NodeAuthSSHKey(ssh_public_key)
    size, img = small(driver), image(driver)
    before = snapshot(cloud)
    dummy = DummyNodeDriver(0)
    unreadable = tmp_path / "a-directory.pub"
    unreadable.mkdir()
    empty_key = tmp_path / "empty.pub"
    empty_key.write_text("Comment: nothing else\n\n")

    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        (
            {"size": NodeSize("x9.huge", "x9.huge", 1, 1, None, None, driver=driver)},
            ValueError,
            "unknown size 'x9.huge' (known sizes: t1.micro, m1.small, m1.medium, m1.large, "
            "m1.xlarge, c1.medium, c1.xlarge)",
        ),
        (
            {"size": dummy.list_sizes()[0]},
            ValueError,
            "size '1' belongs to another driver (DummyNodeDriver)",
        ),
        ({"size": "t1.micro"}, TypeError, "size must be a NodeSize, not str"),
        (
            {"image": "not an image"},
            ValueError,
            "image 'not an image' is neither a Marketplace identifier (27 characters of "
            "[A-Za-z0-9_-]), a pdisk UUID nor an http(s) URL",
        ),
        (
            {"image": dummy.list_images()[0]},
            ValueError,
            "image '1' belongs to another driver (DummyNodeDriver)",
        ),
        (
            {"location": "nowhere"},
            ValueError,
            "unknown location 'nowhere' (known sites: lal, grnet)",
        ),
        (
            {"location": dummy.list_locations()[0]},
            ValueError,
            "location '1' belongs to another driver (DummyNodeDriver)",
        ),
        ({"name": ""}, ValueError, "node name must not be empty"),
        ({"name": " \t\n"}, ValueError, "node name must not be empty"),
        (
            {"name": " padded"},
            ValueError,
            'node name " padded" starts or ends with white space, which OpenNebula\'s VM '
            "listing does not keep",
        ),
        ({"name": 42}, TypeError, "name must be a str, not int"),
        (
            {"auth": None},
            ValueError,
            "no SSH public key: give auth=NodeAuthSSHKey(...) or a readable key file "
            f"(cannot read {Path.home()}/.ssh/id_rsa.pub: ",
        ),
        (
            {"auth": None, "ex_public_key_file": str(unreadable)},
            ValueError,
            f"no SSH public key: give auth=NodeAuthSSHKey(...) or a readable key file "
            f"(cannot read {unreadable}: ",
        ),
        (
            {"auth": None, "ex_public_key_file": str(tmp_path / "missing.pub")},
            ValueError,
            f"(cannot read {tmp_path / 'missing.pub'}: ",
        ),
        (
            {"auth": None, "ex_public_key_file": str(empty_key)},
            ValueError,
            "the SSH public key is empty",
        ),
        (
            {"auth": NodeAuthSSHKey("")},
            ValueError,
            "the SSH public key is empty",
        ),
        (
            {"ex_network": "internet"},
            ValueError,
            "unknown network 'internet' (public, private or local)",
        ),
    ]
    for override, exc_type, message in cases:
        kwargs: dict[str, object] = {"name": "bad", "size": size, "image": img, "auth": auth}
        kwargs.update(override)
        with pytest.raises(exc_type) as info:
            driver.create_node(**kwargs)  # type: ignore[arg-type]
        assert message in str(info.value), (override, str(info.value))
        assert snapshot(cloud) == before, override


def test_an_unknown_marketplace_image_creates_nothing(
    cloud: LocalCloud, seeded: StratusLabNodeDriver, ssh_public_key: str
) -> None:
    driver = seeded
    before = snapshot(cloud)
    with pytest.raises(StratusLabProviderError) as info:
        driver.create_node(
            name="x",
            size=small(driver),
            image="AAAAAAAAAAAAAAAAAAAAAAAAAAA",
            auth=NodeAuthSSHKey(ssh_public_key),
        )
    assert info.value.site == "lal"
    assert info.value.operation == "create_node (Marketplace entry) (GET /metadata)"
    assert "AAAAAAAAAAAAAAAAAAAAAAAAAAA" in str(info.value)
    assert snapshot(cloud) == before


def test_actions_on_nodes_that_are_not_ours_or_gone(
    cloud: LocalCloud, seeded: StratusLabNodeDriver
) -> None:
    driver = seeded
    with LocalCloud(sites=["cern"]) as other_cloud:
        other_cloud.seed("cern", vms=1)
        foreign = make_driver(other_cloud).list_nodes()[0]
    assert foreign.id == "0@cern"
    dummy_node = DummyNodeDriver(0).list_nodes()[0]
    node = by_id(driver.list_nodes())["0@lal"]
    driver.destroy_node(node)
    assert cloud.vm_state("lal", 0) == DONE
    actions = cloud.request_count("lal", "compute", "one.vm.action")
    for act in (driver.reboot_node, driver.stop_node, driver.start_node, driver.destroy_node):
        with pytest.raises(ValueError) as info:
            act(foreign)
        assert str(info.value) == "unknown location 'cern' (known sites: lal, grnet)"
        with pytest.raises(ValueError) as info:
            act(dummy_node)
        assert str(info.value) == "'1' is not a StratusLab node id (<vm id>@<site>)"
        # A refusal by the remote state is a libcloud error, not a bad argument (issue 14).
        with pytest.raises(StratusLabStateError) as state:
            act(node)
        label = act.__name__
        assert isinstance(state.value, LibcloudError)
        assert not isinstance(state.value, ValueError)
        assert str(state.value).endswith(
            f"node 0@lal is already destroyed (OpenNebula state DONE): {label} is not possible"
        )
        assert (state.value.site, state.value.operation) == ("lal", f"{label} (one.vm.info)")
        assert state.value.driver is driver
    assert cloud.request_count("lal", "compute", "one.vm.action") == actions
    assert cloud.vm_state("grnet", 0) == RUNNING
    with pytest.raises(StratusLabNotFoundError) as err:
        driver.reboot_node(Node("5@grnet", "ghost", NodeState.RUNNING, [], [], driver))
    assert isinstance(err.value, StratusLabProviderError)
    assert (err.value.http_code, err.value.service_code) == (404, 1024)
    assert err.value.operation == "reboot_node (one.vm.info)"


# --------------------------------------------------------------------------- the template sent


def daemon_template(cloud: LocalCloud, site: str, vm_id: int) -> ET.Element:
    """The VM's TEMPLATE as the daemon stored it, read by an independent client."""
    rpc = xmlrpc.client.ServerProxy(cloud.endpoints(site)["rpc2"])
    ok, doc, _code = rpc.one.vm.info(f"{DEFAULT_USER}:{DEFAULT_PASSWORD}", vm_id)
    assert ok is True, doc
    template = ET.fromstring(doc).find("TEMPLATE")
    assert template is not None
    return template


def fields(element: ET.Element | None) -> dict[str, str]:
    assert element is not None
    return {child.tag: child.text or "" for child in element}


def test_the_template_of_a_full_create_on_3_2(ssh_public_key: str) -> None:
    centos = "KzSS0YL0P2bqIVSsvab1yBCcd8r"  # raw, inbound ports 22, 80, 443
    with LocalCloud(sites=SITES, boot_step=0.02, version="3.2") as cloud:
        driver = make_driver(cloud)
        node = driver.create_node(
            name="full create",
            size=next(s for s in driver.list_sizes() if s.id == "m1.large"),
            image=driver.get_image(centos),
            location="grnet",
            auth=NodeAuthSSHKey(ssh_public_key),
            ex_network="private",
            ex_context={"USER_DATA_URL": "http://example.org/ud", "NOTE": 'a "quoted" [v]=1'},
            ex_volatile_disk_gib=5,
        )
        source = f"{cloud.endpoints('grnet')['marketplace']}/metadata/{centos}"
        assert cloud.vm_template("grnet", 0) == (
            "CPU = 2\n"
            "VCPU = 2\n"
            "MEMORY = 6144\n"
            'RANK = "- RUNNING_VMS"\n'
            'NAME = "full create"\n'
            "DISK = [\n"
            f'source = "{source}",\n'
            'target = "hda",\n'
            "save = no,\n"
            'readonly = "no",\n'
            'driver = "raw"\n'
            "]\n"
            "DISK = [\n"
            "type = swap,\n"
            "size = 6144,\n"
            'target = "hdb",\n'
            'readonly = "no"\n'
            "]\n"
            'DISK = [ format = "ext3", readonly = "no", save = "no", size = 5120, '
            'target = "hdc", type = "fs" ]\n'
            'NIC = [ network_uname = "oneadmin", network = "private" ]\n'
            'GRAPHICS = [ port = "-1", type = "vnc" ]\n'
            "CONTEXT = [\n"
            f'public_key = "{ssh_public_key}",\n'
            'USER_DATA_URL = "http://example.org/ud",\n'
            'NOTE = "a \\"quoted\\" [v]=1",\n'
            'target = "hdd"\n'
            "]\n"
            'INBOUND_PORTS = "22,80,443"\n'
            f'CLIENT_TOKEN = "{node.extra["client_token"]}"\n'
        )
        # Attribute by attribute, as the daemon parsed and stored it.
        stored = daemon_template(cloud, "grnet", 0)
        assert (stored.findtext("CPU"), stored.findtext("VCPU"), stored.findtext("MEMORY")) == (
            "2",
            "2",
            "6144",
        )
        assert stored.findtext("NAME") == "full create"
        assert stored.findtext("RANK") == "- RUNNING_VMS"
        assert stored.findtext("INBOUND_PORTS") == "22,80,443"
        root, swap, volatile = stored.findall("DISK")
        assert fields(root) == {
            "DEV_PREFIX": "hd",
            "DISK_ID": "0",
            "DRIVER": "raw",
            "READONLY": "no",
            "SAVE": "no",
            "SOURCE": source,
            "TARGET": "hda",
        }
        assert fields(swap) == {
            "DEV_PREFIX": "hd",
            "DISK_ID": "1",
            "READONLY": "no",
            "SIZE": "6144",
            "TARGET": "hdb",
            "TYPE": "swap",
        }
        assert fields(volatile) == {
            "DEV_PREFIX": "hd",
            "DISK_ID": "2",
            "FORMAT": "ext3",
            "READONLY": "no",
            "SAVE": "no",
            "SIZE": "5120",
            "TARGET": "hdc",
            "TYPE": "fs",
        }
        nic = fields(stored.find("NIC"))
        assert (nic["NETWORK"], nic["NETWORK_UNAME"], nic["IP"]) == (
            "private",
            "oneadmin",
            FIRST_PRIVATE["grnet"],
        )
        assert fields(stored.find("GRAPHICS")) == {"PORT": "-1", "TYPE": "vnc"}
        assert fields(stored.find("CONTEXT")) == {
            "DISK_ID": "3",
            "NOTE": 'a "quoted" [v]=1',
            "PUBLIC_KEY": ssh_public_key,
            "TARGET": "hdd",
            "USER_DATA_URL": "http://example.org/ud",
        }
        assert node.private_ips == [FIRST_PRIVATE["grnet"]]
        assert node.size is not None
        assert node.size.id == "m1.large"
        assert node.image is not None
        assert node.image.id == centos


def test_the_template_of_a_create_on_3_8_types_every_disk(ssh_public_key: str) -> None:
    debian = "PpELY8k_6QKYLhpe1JOXFMfeOva"  # raw, disks bus virtio, inbound port 22
    with LocalCloud(sites=SITES, boot_step=0.02, version="3.8") as cloud:
        driver = make_driver(cloud)
        node = driver.create_node(
            name="debian",
            size=small(driver),
            image=debian,
            auth=NodeAuthSSHKey(ssh_public_key),
        )
        source = f"{cloud.endpoints('lal')['marketplace']}/metadata/{debian}"
        assert cloud.vm_template("lal", 0) == (
            "CPU = 1\n"
            "VCPU = 1\n"
            "MEMORY = 512\n"
            'RANK = "- RUNNING_VMS"\n'
            'NAME = "debian"\n'
            "DISK = [\n"
            f'source = "{source}",\n'
            'target = "vda",\n'
            "save = no,\n"
            'readonly = "no",\n'
            'driver = "raw",\n'
            'type = "fs"\n'
            "]\n"
            "DISK = [\n"
            "type = swap,\n"
            "size = 512,\n"
            'target = "vdb",\n'
            'readonly = "no"\n'
            "]\n"
            'NIC = [ network_uname = "oneadmin", network = "public" ]\n'
            'GRAPHICS = [ port = "-1", type = "vnc" ]\n'
            "CONTEXT = [\n"
            f'public_key = "{ssh_public_key}",\n'
            'target = "hdd"\n'
            "]\n"
            'INBOUND_PORTS = "22"\n'
            f'CLIENT_TOKEN = "{node.extra["client_token"]}"\n'
        )
        stored = daemon_template(cloud, "lal", 0)
        root, swap = stored.findall("DISK")
        assert (root.findtext("TYPE"), root.findtext("TARGET"), root.findtext("DEV_PREFIX")) == (
            "fs",
            "vda",
            "hd",
        )
        assert (swap.findtext("TYPE"), swap.findtext("SIZE")) == ("swap", "512")
        assert fields(stored.find("NIC"))["IP"] == FIRST_PUBLIC["lal"]
