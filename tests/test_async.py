"""The asyncio twins (``driver.ex_async``, README "asyncio"): every call end to end on the local
cloud, the same objects and exceptions as the synchronous calls, cancellation, concurrency with
the synchronous API from other threads, and uvloop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from helpers import wait_for
from libcloud.common.types import InvalidCredsError
from libcloud.compute.base import Node, NodeAuthSSHKey, NodeImage, StorageVolume
from libcloud.compute.types import NodeState, StorageVolumeState

from stratuslab_libcloud import (
    AsyncStratusLabNodeDriver,
    LocalCloud,
    StratusLabNodeDriver,
)
from stratuslab_libcloud.errors import (
    StratusLabNotFoundError,
    StratusLabProviderError,
    StratusLabTimeoutError,
)
from stratuslab_libcloud.fleet import FleetInterrupted, FleetResult

IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAsyncKeyxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx a@k"
)
SITE = "lal"
DONE = 6

_T = TypeVar("_T")


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


@pytest.fixture
def aio(driver: StratusLabNodeDriver) -> AsyncStratusLabNodeDriver:
    return driver.ex_async


def test_ex_async_shares_the_driver(driver: StratusLabNodeDriver) -> None:
    a = driver.ex_async
    assert isinstance(a, AsyncStratusLabNodeDriver)
    assert a.driver is driver and a._core is driver._core
    assert "AsyncStratusLabNodeDriver" in repr(a)


def test_locations_sizes_images(
    driver: StratusLabNodeDriver, aio: AsyncStratusLabNodeDriver
) -> None:
    async def main() -> None:
        assert [loc.id for loc in await aio.list_locations()] == [
            loc.id for loc in driver.list_locations()
        ]
        assert [s.id for s in await aio.list_sizes()] == [s.id for s in driver.list_sizes()]
        images = await aio.list_images()
        want = driver.list_images()
        assert [i.id for i in images] == [i.id for i in want]
        assert all(isinstance(i, NodeImage) and i.driver is driver for i in images)
        assert [i.extra for i in images] == [i.extra for i in want]
        one = await aio.get_image(IMAGE)
        assert one.id == IMAGE and one.extra == driver.get_image(IMAGE).extra
        with pytest.raises(StratusLabProviderError) as info:
            await aio.get_image("A" * 27)
        assert info.value.driver is driver
        with pytest.raises(ValueError):
            await aio.get_image("short")
        filtered = await aio.list_images(ex_os="no-such-os")
        assert filtered == []

    run(main())


def test_node_lifecycle(driver: StratusLabNodeDriver, aio: AsyncStratusLabNodeDriver) -> None:
    async def main() -> None:
        size = (await aio.list_sizes())[0]
        node = await aio.create_node("a1", size, IMAGE, location=SITE, auth=KEY)
        assert isinstance(node, Node) and node.driver is driver
        assert node.extra["client_token"]
        [(ready, ips)] = await aio.wait_until_running([node], wait_period=0.02, timeout=20)
        assert ready.id == node.id and ready.state == NodeState.RUNNING and ips
        got = await aio.ex_get_node(node.id)
        assert got.id == node.id and got.extra == driver.ex_get_node(node.id).extra
        assert node.id in [n.id for n in await aio.list_nodes()]
        assert [n.id for n in await aio.list_nodes(ex_location=SITE)] == [
            n.id for n in driver.list_nodes(ex_location=SITE)
        ]
        assert await aio.reboot_node(node) is True
        assert await aio.stop_node(node) is True
        while (await aio.ex_get_node(node.id)).state != NodeState.STOPPED:
            await asyncio.sleep(0.02)
        assert await aio.start_node(node) is True
        assert await aio.destroy_node(node) is True
        with pytest.raises(StratusLabNotFoundError) as info:
            await aio.ex_get_node("99999@lal")
        assert info.value.driver is driver

    run(main())


def test_fleets(driver: StratusLabNodeDriver, aio: AsyncStratusLabNodeDriver) -> None:
    async def main() -> None:
        size = (await aio.list_sizes())[0]
        made = await aio.ex_create_nodes(
            ["f0", "f1", "f2"],
            size,
            IMAGE,
            location=["lal", "grnet"],
            auth=KEY,
            ex_client_tokens=["tf0", "tf1", "tf2"],
        )
        assert made.ok and [n.name for n in made.nodes] == ["f0", "f1", "f2"]
        assert [n.extra["location"] for n in made.nodes] == ["lal", "grnet", "lal"]
        again = await aio.ex_create_nodes(
            ["f0"], size, IMAGE, location="lal", auth=KEY, ex_client_tokens=["tf0"]
        )
        assert again.nodes[0].id == made.nodes[0].id  # the token found the same VM
        gone = await aio.ex_destroy_nodes([*made.nodes[:2], made.nodes[2].id])
        assert gone.ok and len(gone.nodes) == 3
        bad = await aio.ex_destroy_nodes(["99999@lal"])
        assert not bad.ok and bad.failures[0][0] == "99999@lal"
        with pytest.raises(ValueError):
            await aio.ex_create_nodes(["x"], size, IMAGE, auth=KEY, ex_max_in_flight=0)

    run(main())


def test_volumes(driver: StratusLabNodeDriver, aio: AsyncStratusLabNodeDriver) -> None:
    async def main() -> None:
        size = (await aio.list_sizes())[0]
        node = await aio.create_node("v1", size, IMAGE, location=SITE, auth=KEY)
        await aio.wait_until_running([node], wait_period=0.02, timeout=20)
        vol = await aio.create_volume(1, "data", location=SITE)
        assert isinstance(vol, StorageVolume) and vol.driver is driver
        assert vol.id in [v.id for v in await aio.list_volumes()]
        assert await aio.attach_volume(node, vol) is True
        assert vol.state == StorageVolumeState.INUSE and vol.extra["node"] == node.id
        assert await aio.detach_volume(vol) is True
        assert vol.state == StorageVolumeState.AVAILABLE
        assert await aio.destroy_volume(vol) is True
        assert vol.id not in [v.id for v in await aio.list_volumes(ex_location=SITE)]
        with pytest.raises(ValueError):
            await aio.create_volume(0, "x", location=SITE)
        with pytest.raises(StratusLabProviderError):
            await aio.destroy_volume(vol)

    run(main())


def test_exceptions_are_the_sync_ones(cloud: LocalCloud) -> None:
    bad = StratusLabNodeDriver("nobody", "wrong", ex_config_file=cloud.config_file)
    with pytest.raises(InvalidCredsError) as sync_info:
        bad.list_nodes()

    async def main() -> None:
        with pytest.raises(InvalidCredsError) as info:
            await bad.ex_async.list_nodes()
        assert type(info.value) is type(sync_info.value)
        assert info.value.driver is bad
        assert str(info.value) == str(sync_info.value)
        with pytest.raises(TypeError):
            await bad.ex_async.ex_get_node(None)

    run(main())


def test_the_driver_timeout_applies(cloud: LocalCloud) -> None:
    d = StratusLabNodeDriver(ex_config_file=cloud.config_file, timeout=0.3, ex_retries=1)
    cloud.inject_fault("slow", site=SITE, service="compute", op="one.vm.info", seconds=2, times=1)
    with pytest.raises(StratusLabTimeoutError):
        run(d.ex_async.ex_get_node("0@lal"))


def live_with_token(cloud: LocalCloud, token: str) -> list[int]:
    out = []
    for vm in cloud.vm_ids(SITE):
        state = cloud.vm_state(SITE, vm)
        template = cloud.vm_template(SITE, vm) or ""
        if state is not None and state[0] != DONE and f'"{token}"' in template:
            out.append(vm)
    return out


def test_cancelling_drops_the_request_and_the_token_tells(cloud: LocalCloud) -> None:
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, timeout=10, ex_retries=1)
    aio = driver.ex_async
    size = driver.list_sizes()[0]
    cloud.inject_fault(
        "slow", site=SITE, service="compute", op="one.vm.allocate", seconds=1.5, times=1
    )
    before = cloud.dropped_count()

    async def main() -> None:
        task = asyncio.ensure_future(
            aio.create_node("c1", size, IMAGE, location=SITE, auth=KEY, ex_client_token="tc1")
        )
        # Cancel once the server has the allocate (counted) and is holding it.
        while cloud.request_count(SITE, "compute", "one.vm.allocate") == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    # The server saw the connection go: its handler was dropped, the VM never made.
    wait_for(lambda: cloud.dropped_count() > before, what="the server to see the request dropped")
    assert live_with_token(cloud, "tc1") == []
    # Exactly once: the same token after the cancel gives one VM, sent again only now.
    node = run(aio.create_node("c1", size, IMAGE, location=SITE, auth=KEY, ex_client_token="tc1"))
    assert live_with_token(cloud, "tc1") == [node.extra["vm_id"]]
    again = driver.create_node("c1", size, IMAGE, location=SITE, auth=KEY, ex_client_token="tc1")
    assert again.id == node.id


def test_wait_for_times_out_and_the_driver_is_usable(cloud: LocalCloud) -> None:
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, timeout=10, ex_retries=1)
    cloud.inject_fault("slow", site=SITE, service="compute", op="one.vm.info", seconds=5, times=1)
    before = cloud.dropped_count()

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(driver.ex_async.ex_get_node("0@lal"), 0.2)

    run(main())
    wait_for(lambda: cloud.dropped_count() > before, what="the server to see the request dropped")
    assert isinstance(driver.list_nodes(), list)
    assert isinstance(run(driver.ex_async.list_nodes()), list)


def test_many_concurrent_calls_and_sync_calls_from_threads(
    driver: StratusLabNodeDriver, aio: AsyncStratusLabNodeDriver
) -> None:
    size = driver.list_sizes()[0]
    node = driver.create_node("cc", size, IMAGE, location=SITE, auth=KEY)
    errors: list[BaseException] = []
    stop = threading.Event()

    def sync_worker() -> None:
        try:
            while not stop.is_set():
                assert driver.ex_get_node(node.id).id == node.id
                driver.list_volumes()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sync_worker) for _ in range(3)]
    for t in threads:
        t.start()
    try:

        async def main() -> list[Node]:
            return await asyncio.gather(*(aio.ex_get_node(node.id) for _ in range(200)))

        got = run(main())
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert {n.id for n in got} == {node.id}


def test_loops_in_other_threads(
    driver: StratusLabNodeDriver, aio: AsyncStratusLabNodeDriver
) -> None:
    results: list[int] = []

    def in_thread() -> None:
        results.append(len(asyncio.run(aio.list_images())))

    threads = [threading.Thread(target=in_thread) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1 and results[0] > 0


def test_uvloop(driver: StratusLabNodeDriver, aio: AsyncStratusLabNodeDriver) -> None:
    uvloop = pytest.importorskip("uvloop", reason="pip install uvloop (in the [test] extras)")

    async def main() -> list[str]:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        return [n.id for n in await aio.list_nodes()]

    assert uvloop.run(main()) == [n.id for n in driver.list_nodes()]


def test_outside_a_loop_is_an_error(aio: AsyncStratusLabNodeDriver) -> None:
    coro = aio.list_nodes()
    with pytest.raises(RuntimeError):
        coro.send(None)
    coro.close()


def test_create_cancelled_after_the_allocate_the_token_finds_the_vm(cloud: LocalCloud) -> None:
    """The allocate was carried out, then the task was cancelled (asyncio.wait_for) while the
    driver read the VM back: the VM exists, and the same token gives it back, never a second."""
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, timeout=10, ex_retries=1)
    aio = driver.ex_async
    size = driver.list_sizes()[0]
    cloud.inject_fault("slow", site=SITE, service="compute", op="one.vm.info", seconds=3, times=1)
    allocated = cloud.request_count(SITE, "compute", "one.vm.allocate")

    async def main() -> None:
        create = aio.create_node("c2", size, IMAGE, location=SITE, auth=KEY, ex_client_token="tc2")
        task = asyncio.ensure_future(asyncio.wait_for(create, timeout=30))
        while not live_with_token(cloud, "tc2"):
            assert not task.done(), "create_node ended before it was cancelled"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    (vm,) = live_with_token(cloud, "tc2")
    node = run(aio.create_node("c2", size, IMAGE, location=SITE, auth=KEY, ex_client_token="tc2"))
    assert node.extra["vm_id"] == vm
    assert cloud.request_count(SITE, "compute", "one.vm.allocate") == allocated + 1
    assert live_with_token(cloud, "tc2") == [vm]


def test_wait_for_on_create_node(cloud: LocalCloud) -> None:
    """``asyncio.wait_for`` over create_node: in time, the node; timed out before the allocate
    was carried out, no VM, and the token then makes exactly one."""
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, timeout=10, ex_retries=1)
    aio = driver.ex_async
    size = driver.list_sizes()[0]

    async def main() -> None:
        node = await asyncio.wait_for(
            aio.create_node("w1", size, IMAGE, location=SITE, auth=KEY, ex_client_token="tw1"), 10
        )
        assert live_with_token(cloud, "tw1") == [node.extra["vm_id"]]
        cloud.inject_fault(
            "slow", site=SITE, service="compute", op="one.vm.allocate", seconds=3, times=1
        )
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(
                aio.create_node("w2", size, IMAGE, location=SITE, auth=KEY, ex_client_token="tw2"),
                0.5,
            )

    run(main())
    assert live_with_token(cloud, "tw2") == []
    node = run(aio.create_node("w2", size, IMAGE, location=SITE, auth=KEY, ex_client_token="tw2"))
    assert live_with_token(cloud, "tw2") == [node.extra["vm_id"]]


def test_fleet_progress_in_the_loop_thread(
    driver: StratusLabNodeDriver, aio: AsyncStratusLabNodeDriver
) -> None:
    seen: list[tuple[int, int, str, int]] = []

    def progress(done: int, total: int, item: Node | BaseException) -> None:
        name = item.name if isinstance(item, Node) else "error"
        seen.append((done, total, name, threading.get_ident()))

    async def main() -> None:
        loop_thread = threading.get_ident()
        size = (await aio.list_sizes())[0]
        made = await aio.ex_create_nodes(
            ["p0", "p1", "p2"],
            size,
            IMAGE,
            location=["lal", "grnet"],
            auth=KEY,
            ex_progress=progress,
        )
        assert made.ok
        assert [s[:2] for s in seen] == [(1, 3), (2, 3), (3, 3)]
        assert sorted(s[2] for s in seen) == ["p0", "p1", "p2"]
        assert {s[3] for s in seen} == {loop_thread}
        seen.clear()
        gone = await aio.ex_destroy_nodes([*made.nodes, "99999@lal"], ex_progress=progress)
        assert len(gone.nodes) == 3 and gone.failures[0][0] == "99999@lal"
        assert [s[:2] for s in seen] == [(i, 4) for i in range(1, 5)]
        assert sorted(s[2] for s in seen) == ["error", "p0", "p1", "p2"]

    run(main())


def test_fleet_progress_raising_stops_the_fleet(
    cloud: LocalCloud, aio: AsyncStratusLabNodeDriver
) -> None:
    """As the synchronous fleet: no request is sent after the callback raised, those in flight
    finish, and the exception comes with the result (KeyboardInterrupt: FleetInterrupted)."""
    names = [f"s{i}" for i in range(5)]
    # Each allocate takes 0.3 s: the loop sees the first node end long before the second does.
    cloud.inject_fault("slow", site=SITE, service="compute", op="one.vm.allocate", seconds=0.3)

    def progress(done: int, total: int, item: Node | BaseException) -> None:
        raise KeyboardInterrupt

    async def main() -> FleetResult:
        size = (await aio.list_sizes())[0]
        with pytest.raises(FleetInterrupted) as info:
            await aio.ex_create_nodes(
                names,
                size,
                IMAGE,
                location=SITE,
                auth=KEY,
                ex_max_in_flight=1,
                ex_progress=progress,
            )
        return info.value.result

    result = run(main())
    # The next create may have been sent while the first's event went to the loop (as in the
    # synchronous fleet); none after the callback raised.
    assert 1 <= len(result.nodes) <= 2 and result.not_sent and not result.failures
    assert [n.name for n in result.nodes] + result.not_sent == names
    live = [cloud.vm_template(SITE, vm) or "" for vm in cloud.vm_ids(SITE)]
    assert sum(f'"{n}"' in t for n in names for t in live) == len(result.nodes)


def test_cancelling_a_fleet_drops_its_requests(cloud: LocalCloud) -> None:
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, timeout=10, ex_retries=1)
    aio = driver.ex_async
    size = driver.list_sizes()[0]
    cloud.inject_fault("slow", site=SITE, service="compute", op="one.vm.allocate", seconds=3)
    before = cloud.dropped_count()
    calls: list[object] = []

    async def main() -> None:
        task = asyncio.ensure_future(
            aio.ex_create_nodes(
                ["k0", "k1"],
                size,
                IMAGE,
                location=SITE,
                auth=KEY,
                ex_client_tokens=["tk0", "tk1"],
                ex_progress=lambda *a: calls.append(a),
            )
        )
        while cloud.request_count(SITE, "compute", "one.vm.allocate") < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    wait_for(lambda: cloud.dropped_count() >= before + 2, what="both requests dropped")
    cloud.clear_faults()
    assert calls == [] and live_with_token(cloud, "tk0") == live_with_token(cloud, "tk1") == []


def test_plain_opennebula_images_and_volumes(ssh_public_key: str) -> None:
    """A StratusLab site and a plain OpenNebula 7.4 site: the async image and volume calls on
    the plain site give what the synchronous ones give."""
    options = {"grid": {"version": "7.4", "site_type": "opennebula"}}
    with LocalCloud(["lal", "grid"], site_options=options, boot_step=0.01) as cloud:
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
        aio = driver.ex_async
        size = next(s for s in driver.list_sizes() if s.id == "m1.small")

        async def main() -> None:
            images = await aio.list_images(location="grid")
            assert [(i.id, i.name, i.extra) for i in images] == [
                (i.id, i.name, i.extra) for i in driver.list_images(location="grid")
            ]
            assert all(i.driver is driver for i in images)
            got = await aio.get_image("template-0@grid", location="grid")
            assert (got.id, got.name) == ("template-0@grid", "tmpl1")
            with pytest.raises(StratusLabProviderError, match=r"one\.image\.info"):
                await aio.get_image("image-99@grid", location="grid")
            with pytest.raises(TypeError):
                await aio.get_image(7, location="grid")  # type: ignore[arg-type]
            node = await aio.create_node(
                "plain-vm",
                size,
                "image-0@grid",
                location="grid",
                auth=NodeAuthSSHKey(ssh_public_key),
                ex_network="public",
            )
            await aio.wait_until_running([node], wait_period=0.05, timeout=10)
            volume, pdisk = await asyncio.gather(
                aio.create_volume(2, "data grid", location="grid", ex_datastore=1),
                aio.create_volume(1, "data lal", location="lal"),
            )
            assert volume.id.endswith("@grid") and volume.driver is driver
            assert (volume.size, volume.state) == (2, StorageVolumeState.AVAILABLE)
            # Both kinds of site in one listing, as the synchronous call lists them.
            listed = await aio.list_volumes()
            assert {v.id for v in listed} == {volume.id, pdisk.id}
            assert sorted(v.id for v in listed) == sorted(v.id for v in driver.list_volumes())
            assert [v.id for v in await aio.list_volumes(ex_location="grid")] == [volume.id]
            assert await aio.attach_volume(node, volume, device="/dev/sdc")
            assert volume.state == StorageVolumeState.INUSE and volume.extra["device"] == "sdc"
            assert volume.extra["node"] == node.id
            with pytest.raises(StratusLabProviderError, match="VMs using it"):
                await aio.destroy_volume(volume)
            wait_for(
                lambda: driver.ex_get_node(node.id).state == NodeState.RUNNING, what="hot-plug"
            )
            assert await aio.detach_volume(volume)
            assert volume.state == StorageVolumeState.AVAILABLE and "node" not in volume.extra
            (free,) = await aio.list_volumes(ex_location="grid")
            assert free.state == StorageVolumeState.AVAILABLE
            wait_for(
                lambda: driver.ex_get_node(node.id).state == NodeState.RUNNING, what="hot-unplug"
            )
            assert await aio.destroy_volume(volume) and await aio.destroy_volume(pdisk)
            assert await aio.list_volumes() == []
            assert await aio.destroy_node(node)

        run(main())
