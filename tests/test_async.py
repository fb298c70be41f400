"""The asyncio twins (``driver.ex_async``, README "asyncio"): every call end to end on the local
cloud, the same objects and exceptions as the synchronous calls, cancellation, concurrency with
the synchronous API from other threads, and uvloop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from conftest import wait_for
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
