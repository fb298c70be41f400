"""The libcloud contract a demanding user relies on (issue 14, items 1-6 and 13-15): failures
never look like empty clouds, refusals by the cloud's state are libcloud errors, errors carry
the same metadata and pickle, volumes are never stranded, the local cloud's knobs refuse typos,
and configuration values are read as RawConfigParser reads them."""

from __future__ import annotations

import pickle
import time
import warnings
import xmlrpc.client
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import requests
from helpers import wait_for
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.compute.base import Node, NodeAuthSSHKey, StorageVolume
from libcloud.compute.types import NodeState

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver, errors
from stratuslab_libcloud.errors import (
    StratusLabAuthError,
    StratusLabError,
    StratusLabNotFoundError,
    StratusLabProviderError,
    StratusLabSitesError,
    StratusLabSiteWarning,
    StratusLabStateError,
)
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

KEY = NodeAuthSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIContractTestKey test@contract")
MISSING_IMAGE = "A" * 27
MISSING_VOLUME = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def two() -> Iterator[LocalCloud]:
    with LocalCloud(sites=["lal", "grnet"], boot_step=0.02) as cloud:
        yield cloud


def driver_for(cloud: LocalCloud, password: str | None = None) -> StratusLabNodeDriver:
    return StratusLabNodeDriver(secret=password, ex_config_file=cloud.config_file)


def new_node(driver: StratusLabNodeDriver, site: str = "lal", name: str = "vm") -> Node:
    size = driver.list_sizes()[0]
    return driver.create_node(name, size, driver.list_images()[0], location=site, auth=KEY)


def running(driver: StratusLabNodeDriver, node: Node) -> Node:
    ((up, _ips),) = driver.wait_until_running([node], wait_period=0.02, timeout=20)
    return up


def mounts(cloud: LocalCloud, site: str = "lal") -> list[tuple[str, str]]:
    return [(d["uuid"], m["vm_id"]) for d in cloud.disks(site) for m in d["mounts"]]


# ------------------------------------------------------------- 1. failures are not empty clouds


def test_a_wrong_password_raises_at_a_single_site() -> None:
    with LocalCloud(sites=["lal"]) as cloud:
        driver = driver_for(cloud, "WRONG")
        for call in (driver.list_nodes, driver.list_volumes):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                with pytest.raises(StratusLabAuthError) as info:
                    call()
            assert isinstance(info.value, InvalidCredsError)
            assert info.value.site == "lal" and info.value.driver is driver


def test_a_wrong_password_raises_at_every_site(two: LocalCloud, tmp_path: Path) -> None:
    config = Path(str(two.config_file)).read_text(encoding="utf-8")
    wrong = tmp_path / "wrong.cfg"
    wrong.write_text(config.replace(DEFAULT_PASSWORD, "WRONG"), encoding="utf-8")
    driver = StratusLabNodeDriver(ex_config_file=str(wrong))
    for call in (driver.list_nodes, driver.list_volumes):
        # Every site refused the credentials: that is a credentials error, partial or not.
        with pytest.raises(StratusLabAuthError):
            call()
        with pytest.raises(StratusLabAuthError):
            call(ex_partial=True)


def test_a_401_at_one_site_raises_unless_partial_results_are_asked_for(two: LocalCloud) -> None:
    two.seed("grnet", vms=1)
    two.inject_fault("status", site="lal", service="any", status=401)
    driver = driver_for(two)
    with pytest.raises(StratusLabAuthError) as info:
        driver.list_nodes()
    assert info.value.site == "lal"
    with pytest.raises(StratusLabAuthError):
        driver.list_volumes()
    with pytest.warns(StratusLabSiteWarning, match="site 'lal' failed and is left out"):
        nodes = driver.list_nodes(ex_partial=True)
    assert [n.id for n in nodes] == ["0@grnet"]
    with pytest.warns(StratusLabSiteWarning, match="site 'lal' failed and is left out"):
        assert driver.list_volumes(ex_partial=True) == []


def test_every_site_down_raises_with_each_sites_error(two: LocalCloud) -> None:
    two.inject_fault("status", site="lal", service="compute", status=503)
    two.inject_fault("status", site="grnet", service="compute", status=500)
    driver = driver_for(two)
    with pytest.raises(StratusLabSitesError) as info:
        driver.list_nodes()
    assert isinstance(info.value, LibcloudError) and info.value.driver is driver
    assert sorted(info.value.errors) == ["grnet", "lal"]
    assert info.value.errors["lal"].http_code == 503  # type: ignore[attr-defined]
    assert info.value.errors["grnet"].http_code == 500  # type: ignore[attr-defined]
    assert all(e.driver is driver for e in info.value.errors.values())  # type: ignore[attr-defined]
    # A single site asked: its own exception.
    with pytest.raises(StratusLabProviderError) as one:
        driver.list_nodes(ex_location="lal")
    assert one.value.http_code == 503


def test_a_named_location_that_fails_raises_whatever_ex_strict_says(two: LocalCloud) -> None:
    two.inject_fault("status", site="grnet", service="any", status=503)
    driver = driver_for(two)
    for call in (driver.list_nodes, driver.list_volumes):
        with pytest.raises(StratusLabProviderError) as info:
            call(ex_location="grnet", ex_strict=False)
        assert info.value.site == "grnet"


def test_one_site_down_is_still_a_partial_result_with_a_warning(two: LocalCloud) -> None:
    two.seed("lal", vms=1)
    two.inject_fault("status", site="grnet", service="any", status=503)
    driver = driver_for(two)
    with pytest.warns(StratusLabSiteWarning, match="site 'grnet' failed and is left out"):
        assert [n.id for n in driver.list_nodes()] == ["0@lal"]
    with pytest.raises(StratusLabProviderError):
        driver.list_nodes(ex_strict=True)


def test_wait_until_running_stops_at_once_on_an_authentication_failure(two: LocalCloud) -> None:
    node = new_node(driver_for(two))
    wrong = driver_for(two, "WRONG")
    start = time.monotonic()
    with pytest.raises(StratusLabAuthError) as info:
        wrong.wait_until_running([node], wait_period=0.05, timeout=60)
    assert time.monotonic() - start < 5
    assert info.value.driver is wrong


def test_wait_until_running_asks_only_the_compute_service_of_the_nodes_sites() -> None:
    with LocalCloud(sites=["lal", "grnet"], boot_step=0.2) as cloud:
        driver = driver_for(cloud)
        node = new_node(driver)
        cloud.inject_fault("slow", site="grnet", service="any", seconds=10)
        pdisk_before = cloud.request_count("lal", "pdisk")
        start = time.monotonic()
        ((up, ips),) = driver.wait_until_running([node], wait_period=0.05, timeout=30)
        assert time.monotonic() - start < 5, "the slow unrelated site slowed the wait"
        assert (up.id, up.state) == (node.id, NodeState.RUNNING) and ips == node.public_ips
        assert cloud.request_count("grnet", "any") == 0
        assert cloud.request_count("lal", "pdisk") == pdisk_before
        assert cloud.request_count("lal", "compute", "one.vmpool.info") >= 2


def test_wait_until_running_retries_a_site_that_fails_for_a_while(two: LocalCloud) -> None:
    driver = driver_for(two)
    node = new_node(driver)
    two.inject_fault("status", site="lal", service="compute", status=503, times=3)
    ((up, _ips),) = driver.wait_until_running([node], wait_period=0.02, timeout=20)
    assert up.id == node.id and up.state == NodeState.RUNNING
    two.inject_fault("status", site="lal", service="compute", status=503)
    with pytest.raises(errors.StratusLabTimeoutError) as info:
        driver.wait_until_running([node], wait_period=0.02, timeout=0.2)
    assert str(info.value).startswith("Timed out after 0.2 seconds (last failure: site 'lal'")


# ------------------------------------------------------- 2. state refusals are libcloud errors


def test_state_refusals_are_libcloud_errors_so_cleanup_idioms_work(two: LocalCloud) -> None:
    driver = driver_for(two)
    node = running(driver, new_node(driver))
    volume = driver.create_volume(1, "data")
    with pytest.raises(StratusLabStateError) as info:
        driver.detach_volume(volume)
    assert isinstance(info.value, StratusLabProviderError) and not isinstance(
        info.value, ValueError
    )
    driver.destroy_node(node)
    try:
        node.destroy()
    except LibcloudError as exc:
        assert isinstance(exc, StratusLabStateError)
    else:
        pytest.fail("destroying a destroyed node was accepted")
    with pytest.raises(StratusLabStateError):
        driver.attach_volume(node, volume)


# -------------------------------------------------------------------- 3. error metadata


def test_not_found_has_one_shape_for_nodes_images_and_volumes(two: LocalCloud) -> None:
    driver = driver_for(two)
    ghost = StorageVolume(MISSING_VOLUME, "ghost", 1, driver, extra={"location": "lal"})
    calls = {
        "node": lambda: driver.ex_get_node("42@lal"),
        "image": lambda: driver.get_image(MISSING_IMAGE),
        "volume": lambda: driver.destroy_volume(ghost),
    }
    for what, call in calls.items():
        with pytest.raises(StratusLabNotFoundError) as info:
            call()
        exc = info.value
        assert isinstance(exc, StratusLabProviderError), what
        assert exc.http_code == 404, what
        assert exc.site == "lal" and exc.endpoint and exc.operation, what
        assert exc.driver is driver, what


def test_no_message_quotes_a_huge_reply(two: LocalCloud) -> None:
    driver = driver_for(two)
    node = new_node(driver)
    two.inject_fault("huge", site="lal", service="compute", op="one.system.version", size=1_000_000)
    with pytest.raises(LibcloudError) as info:
        driver.reboot_node(node)
    message = str(info.value)
    assert len(message) <= 1000
    assert "x" * 100 not in message
    assert info.value.site == "lal" and info.value.driver is driver  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- 4. pickling


def _raise_provider_error(site: str) -> None:
    raise StratusLabProviderError(
        "refused",
        409,
        context={"site": site, "endpoint": "https://x/pdisk", "operation": "destroy_volume"},
    )


def test_a_worker_process_can_raise_a_provider_error() -> None:
    with ProcessPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_raise_provider_error, "lal")
        with pytest.raises(StratusLabProviderError) as info:
            future.result(timeout=60)
    assert (info.value.http_code, info.value.site, info.value.operation) == (
        409,
        "lal",
        "destroy_volume",
    )


def _examples() -> list[BaseException]:
    context = {"site": "lal", "endpoint": "https://e", "operation": "op", "service_code": 7}
    out: list[BaseException] = []
    for name in errors.__all__:
        cls = getattr(errors, name)
        if not issubclass(cls, BaseException) or issubclass(cls, Warning):
            continue
        if issubclass(cls, StratusLabProviderError):
            out.append(cls("m", 409, context=context))
        elif issubclass(cls, StratusLabSitesError):
            out.append(cls("m", {"lal": StratusLabProviderError("inner", 503, context=context)}))
        elif cls is errors.StratusLabMalformedResponseError:
            out.append(cls("m", "body", context=context))
        elif issubclass(cls, (StratusLabError, StratusLabAuthError)):
            out.append(cls("m", context=context))
        else:
            out.append(cls("m"))
    return out


def test_every_exception_class_pickles_with_its_attributes(two: LocalCloud) -> None:
    driver = driver_for(two)
    examples = _examples()
    assert len(examples) == len([n for n in errors.__all__ if "Warning" not in n])
    for exc in examples:
        if isinstance(exc, LibcloudError):
            exc.driver = driver  # a driver built from a live connection: left out if need be
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and back.args == exc.args
        wanted = {k: v for k, v in vars(exc).items() if k not in ("driver", "errors")}
        assert {k: v for k, v in vars(back).items() if k in wanted} == wanted
        if isinstance(exc, StratusLabSitesError):
            inner = back.errors["lal"]
            assert isinstance(inner, StratusLabProviderError) and inner.http_code == 503


# ----------------------------------------------------------------- 5. volumes never stranded


def test_the_local_cloud_releases_the_mounts_of_a_vm_that_ends(two: LocalCloud) -> None:
    driver = driver_for(two)
    node = running(driver, new_node(driver))
    volume = driver.create_volume(1, "data")
    driver.attach_volume(node, volume)
    assert mounts(two) == [(volume.id, str(node.extra["vm_id"]))]
    # Deleted by another client: the site itself must release the disk.
    rpc = xmlrpc.client.ServerProxy(two.endpoints("lal")["rpc2"])
    ok, *_ = rpc.one.vm.action(
        f"{DEFAULT_USER}:{DEFAULT_PASSWORD}", "finalize", node.extra["vm_id"]
    )
    assert ok
    assert mounts(two) == []
    assert driver.destroy_volume(volume) is True


@pytest.mark.parametrize("version", ["3.8", "5.x"])
def test_destroy_node_leaves_no_mount_behind(version: str) -> None:
    # 5.x ends the VM after an epilog: the driver removes the mount itself.
    with LocalCloud(sites=["lal"], boot_step=0.5, version=version) as cloud:
        driver = driver_for(cloud)
        node = running(driver, new_node(driver))
        volume = driver.create_volume(1, "data")
        driver.attach_volume(node, volume)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert driver.destroy_node(node) is True
        assert mounts(cloud) == []
        assert driver.destroy_volume(volume) is True


def _register_mount(
    cloud: LocalCloud, uuid: str, vm_id: int, password: str = DEFAULT_PASSWORD
) -> None:
    reply = requests.post(
        f"{cloud.endpoints('lal')['pdisk']}/pswd/disks/{uuid}/mounts/",
        data={"node": "node-1.lal.localcloud", "vm_id": str(vm_id), "register_only": "true"},
        auth=(DEFAULT_USER, password),
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text


def test_detach_removes_mounts_of_done_and_vanished_vms(two: LocalCloud) -> None:
    driver = driver_for(two)
    node = new_node(driver)
    driver.destroy_node(node)
    volume = driver.create_volume(1, "data")
    # Mounts a site left behind: on the caller's DONE VM, and on a VM that never existed.
    _register_mount(two, volume.id, int(node.extra["vm_id"]))
    _register_mount(two, volume.id, 4242)
    assert len(mounts(two)) == 2
    volume = next(v for v in driver.list_volumes() if v.id == volume.id)
    assert driver.detach_volume(volume) is True
    assert mounts(two) == []
    assert driver.destroy_volume(volume) is True


def test_detach_keeps_refusing_mounts_on_other_users_vms() -> None:
    users = {"alice": "a-password", "bob": "b-password"}
    with LocalCloud(sites=["lal"], users=users) as cloud:
        bob = StratusLabNodeDriver("bob", "b-password", ex_config_file=cloud.config_file)
        bobs = new_node(bob)
        alice = driver_for(cloud)
        volume = alice.create_volume(1, "data")
        _register_mount(cloud, volume.id, int(bobs.extra["vm_id"]), "a-password")
        with pytest.raises(StratusLabStateError, match="mounted only on VMs that are not yours"):
            alice.detach_volume(next(v for v in alice.list_volumes() if v.id == volume.id))


# ------------------------------------------------------------------- 6. volumes of a node


def test_ex_get_node_reports_the_volumes_list_nodes_reports(two: LocalCloud) -> None:
    driver = driver_for(two)
    node = running(driver, new_node(driver))
    volume = driver.create_volume(1, "data")
    driver.attach_volume(node, volume)
    (listed,) = [n for n in driver.list_nodes() if n.id == node.id]
    got = driver.ex_get_node(node.id)
    assert listed.extra["volumes"] == {volume.id: volume.extra["device"]}
    assert got.extra["volumes"] == listed.extra["volumes"]


def test_volumes_are_unknown_when_pdisk_fails(two: LocalCloud) -> None:
    driver = driver_for(two)
    node = running(driver, new_node(driver))
    two.inject_fault("status", site="lal", service="pdisk", status=503)
    with pytest.warns(StratusLabSiteWarning, match="site 'lal' gives no volumes"):
        (listed,) = driver.list_nodes(ex_location="lal")
    assert listed.id == node.id and listed.extra["volumes"] is None
    with pytest.warns(StratusLabSiteWarning, match="site 'lal' gives no volumes"):
        assert driver.ex_get_node(node.id).extra["volumes"] is None
    with pytest.raises(StratusLabProviderError) as info:
        driver.list_nodes(ex_strict=True)
    assert info.value.http_code == 503 and "GET /disks/" in str(info.value.operation)


# ------------------------------------------------------------------ 13. the local cloud's knobs


def test_request_count_without_an_operation_counts_every_operation(two: LocalCloud) -> None:
    assert two.request_count("lal", "compute") == 0
    driver_for(two).list_nodes()
    assert two.request_count("lal", "compute") == two.request_count("lal", "compute", "*") >= 1
    assert two.request_count("lal", "pdisk") >= 1


def test_fault_and_seed_refuse_unknown_sites_and_services(two: LocalCloud) -> None:
    with pytest.raises(ValueError, match="unknown site 'lall'"):
        two.inject_fault("drop", site="lall")
    with pytest.raises(ValueError, match="unknown service 'computer'"):
        two.inject_fault("drop", site="lal", service="computer")
    with pytest.raises(ValueError, match="unknown site 'lall'"):
        two.seed("lall", vms=1)
    assert two.vm_ids("lal") == [] and two.vm_ids("grnet") == []


@pytest.mark.parametrize("password", ["50%off", "%(user)s%%", "a;b#c = d: [e]", "é 中 🚀"])
def test_any_password_reads_back_unchanged(password: str) -> None:
    with LocalCloud(sites=["lal"], users={"alice": password}) as cloud:
        text = Path(str(cloud.config_file)).read_text(encoding="utf-8")
        assert f"password = {password}\n" in text
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
        assert driver.list_nodes(ex_strict=True) == []


@pytest.mark.parametrize("password", [" lead", "trail ", "two\nlines", ""])
def test_a_password_a_file_cannot_hold_is_refused(password: str) -> None:
    with pytest.raises(ValueError):
        LocalCloud(sites=["lal"], users={"alice": password})


# --------------------------------------------------------- 14. RawConfigParser semantics


def test_percent_signs_in_a_configuration_file_are_kept(tmp_path: Path) -> None:
    with LocalCloud(sites=["lal"], users={"alice": "50%off"}) as cloud:
        path = tmp_path / "stratuslab-user.cfg"
        path.write_text(
            "[default]\n"
            f"endpoint = {cloud.endpoints('lal')['compute']}\n"
            f"pdisk_endpoint = {cloud.endpoints('lal')['pdisk']}\n"
            "username = alice\n"
            "password = 50%off\n"
            "name = 100% %(not)s interpolated\n",
            encoding="utf-8",
        )
        driver = StratusLabNodeDriver(ex_config_file=str(path))
        assert driver.list_nodes(ex_strict=True) == []
        assert driver.list_locations()[0].name == "100% %(not)s interpolated"


def test_rebooting_a_node_of_opennebula_3_2_sends_reboot() -> None:
    with LocalCloud(sites=["lal"], version="3.2", boot_step=0.02) as cloud:
        driver = driver_for(cloud)
        node = running(driver, new_node(driver))
        before = cloud.request_count("lal", "compute", "one.vm.action")
        assert driver.reboot_node(node) is True
        assert cloud.request_count("lal", "compute", "one.vm.action") == before + 1
        wait_for(lambda: cloud.vm_state("lal", 0) == (3, 3), what="running again")
