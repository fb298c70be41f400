"""Native asyncio twins of the driver's calls: ``driver.ex_async``.

``driver.ex_async`` is an :class:`AsyncStratusLabNodeDriver` over the same core as ``driver``
(its connections, settings, proxies): each method is the synchronous method of the same name as
a coroutine, taking the same arguments, returning the same libcloud objects (whose ``driver`` is
the synchronous driver) and raising the same exceptions. The network work is a Rust future on
the driver's tokio runtime, its result set from the event loop's own thread
(src/python/aio.rs): no thread per call.
Cancelling the task (``task.cancel()``, ``asyncio.wait_for``'s timeout) drops the Rust future
and its HTTP request; a cancelled create may or may not have made its VM: look its client token
up (README "asyncio").
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from libcloud.common.types import LibcloudError
from libcloud.compute.base import (
    Node,
    NodeAuthPassword,
    NodeAuthSSHKey,
    NodeImage,
    NodeLocation,
    NodeSize,
    StorageVolume,
)

from . import _opennebula, _stratuslab
from . import fleet as _fleet

if TYPE_CHECKING:
    from .driver import StratusLabNodeDriver

__all__ = ["AsyncStratusLabNodeDriver"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _names_driver(
    method: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Sets ``driver`` on what a coroutine method raises (as the synchronous methods do)."""

    @functools.wraps(method)
    async def named(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(*args, **kwargs)
        except LibcloudError as exc:
            if args and isinstance(args[0], AsyncStratusLabNodeDriver):
                args[0].driver._own(exc)
            raise

    return named


async def _run_fleet(
    fleet: _stratuslab.AsyncFleet, progress: _fleet._Progress
) -> tuple[list[tuple[Any, BaseException | None]], BaseException | None]:
    """Runs a started fleet to its end, calling ``progress`` in the loop's thread as each item
    ends. An exception from ``progress`` stops new requests (those in flight finish) and is
    returned with every outcome, as in the synchronous fleets; cancelling the task drops the
    fleet with its requests in flight."""
    stopped: BaseException | None = None
    try:
        while (batch := await fleet.next()) is not None:
            for index, value, exc in batch:
                try:
                    progress(index, value, exc)
                except BaseException as failed:  # returned, then raised by _finish
                    fleet.stop()
                    if stopped is None:
                        stopped = failed
        return await fleet.outcomes(), stopped
    except BaseException:
        fleet.abort()
        raise


class AsyncStratusLabNodeDriver:
    """The asyncio face of a :class:`StratusLabNodeDriver` (get it as ``driver.ex_async``).

    Methods must be awaited from a running event loop (any loop, uvloop too, in any thread).
    The fleets (``ex_create_nodes``, ``ex_destroy_nodes``) call ``ex_progress`` in the loop's
    thread as each node ends; an exception from it stops sending (those in flight finish) and
    is raised with the result (a ``KeyboardInterrupt`` as :class:`FleetInterrupted`), as in the
    synchronous fleets. Cancelling a fleet drops its requests in flight.
    """

    def __init__(self, driver: StratusLabNodeDriver) -> None:
        self.driver = driver
        self._core = driver._core

    def __repr__(self) -> str:
        return f"<AsyncStratusLabNodeDriver of {self.driver!r}>"

    # ------------------------------------------------------------------ locations and sizes

    async def list_locations(self) -> list[NodeLocation]:
        return self.driver.list_locations()

    async def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        return self.driver.list_sizes(location)

    # ------------------------------------------------------------------ nodes

    @_names_driver
    async def list_nodes(
        self,
        ex_location: NodeLocation | str | None = None,
        ex_strict: bool = False,
        ex_partial: bool = False,
    ) -> list[Node]:
        d = self.driver
        site = None if ex_location is None else d._location(ex_location).id
        listed = await self._core.list_nodes_async(site, ex_strict, d._node_from)
        return d._listed_nodes(site, ex_partial, *listed)

    async def ex_get_node(self, node_id: Node | str | None) -> Node:
        # One coroutine, the node built by the core (P10: a thousand of these at once).
        d = self.driver
        try:
            site, vm = d._site_of_node(node_id)
            node, volumes_error = await self._core.get_node_async(site, vm, d._node_from)
        except LibcloudError as exc:
            d._own(exc)
            raise
        if volumes_error is not None:
            d._warn_volumes_unknown(site, volumes_error)
        return node

    @_names_driver
    async def wait_until_running(
        self,
        nodes: list[Node],
        wait_period: float = 5,
        timeout: float = 600,
        ssh_interface: str = "public_ips",
        force_ipv4: bool = True,
        ex_list_nodes_kwargs: dict[str, Any] | None = None,
    ) -> list[tuple[Node, list[str]]]:
        d = self.driver
        wanted, count = d._wanted(nodes, ssh_interface)
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        sites = list(wanted)
        while True:
            got = await asyncio.gather(
                *(self._core.list_nodes_async(s, False, d._node_from, False) for s in sites)
            )
            ready, last = d._ready(wanted, list(zip(sites, got)), ssh_interface, force_ipv4, last)
            if len(ready) == count:
                return ready
            await asyncio.sleep(d._wait_left(deadline, wait_period, timeout, last))

    @_names_driver
    async def create_node(
        self,
        name: str,
        size: NodeSize,
        image: NodeImage | str,
        location: NodeLocation | str | None = None,
        auth: NodeAuthSSHKey | NodeAuthPassword | None = None,
        ex_network: str | None = None,
        ex_context: Mapping[str, str] | None = None,
        ex_public_key_file: str | None = None,
        ex_disks_bus: str | None = None,
        ex_volatile_disk_gib: int | None = None,
        ex_client_token: str | None = None,
        ex_settle: float | None = None,
    ) -> Node:
        d = self.driver
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        loc = d._location(location)
        args = d._create_args(
            size,
            image,
            auth,
            ex_network,
            ex_context,
            ex_public_key_file,
            ex_disks_bus,
            ex_volatile_disk_gib,
        )
        rec = await self._core.create_node_async(
            loc.id, name, args, _fleet._token(ex_client_token), _fleet._settle(ex_settle)
        )
        return d._to_node(rec)

    async def ex_create_nodes(
        self,
        names: Sequence[str],
        size: NodeSize,
        image: NodeImage | str,
        location: NodeLocation | str | Sequence[NodeLocation | str] | None = None,
        auth: NodeAuthSSHKey | NodeAuthPassword | None = None,
        ex_network: str | None = None,
        ex_context: Mapping[str, str] | None = None,
        ex_public_key_file: str | None = None,
        ex_disks_bus: str | None = None,
        ex_volatile_disk_gib: int | None = None,
        ex_client_tokens: Sequence[str] | None = None,
        ex_max_in_flight: int = _stratuslab.DEFAULT_MAX_IN_FLIGHT,
        ex_settle: float | None = None,
        ex_progress: _fleet.Progress | None = None,
    ) -> _fleet.FleetResult:
        d = self.driver
        request = d._fleet_request(
            names,
            size,
            image,
            location,
            auth,
            ex_network,
            ex_context,
            ex_public_key_file,
            ex_disks_bus,
            ex_volatile_disk_gib,
            ex_client_tokens,
            ex_max_in_flight,
            ex_settle,
        )
        progress = _fleet._Progress(len(request[1]), ex_progress, d._to_node)
        fleet = self._core.create_nodes_async(*request)
        outcomes, stopped = await _run_fleet(fleet, progress)
        return _fleet._finish("ex_create_nodes", d._created(request[1], outcomes), stopped)

    async def ex_destroy_nodes(
        self,
        nodes: Sequence[Node | str],
        ex_max_in_flight: int = _stratuslab.DEFAULT_MAX_IN_FLIGHT,
        ex_progress: _fleet.Progress | None = None,
    ) -> _fleet.FleetResult:
        d = self.driver
        ids, max_in_flight, as_nodes = d._destroy_request(nodes, ex_max_in_flight)
        progress = _fleet._Progress(len(as_nodes), ex_progress, lambda _: None, as_nodes)
        fleet = self._core.destroy_nodes_async(ids, max_in_flight)
        outcomes, stopped = await _run_fleet(fleet, progress)
        return _fleet._finish("ex_destroy_nodes", d._destroyed(as_nodes, outcomes), stopped)

    @_names_driver
    async def _action(self, node: Node | str, action: str) -> bool:
        site, vm = self.driver._site_of_node(node)
        cleanup = await self._core.node_action_async(site, vm, action)
        return self.driver._acted(site, action, cleanup)

    async def destroy_node(self, node: Node) -> bool:
        return await self._action(node, "destroy")

    async def reboot_node(self, node: Node) -> bool:
        return await self._action(node, "reboot")

    async def stop_node(self, node: Node) -> bool:
        return await self._action(node, "stop")

    async def start_node(self, node: Node) -> bool:
        return await self._action(node, "start")

    async def ex_recover(self, node: Node | str, operation: str) -> bool:
        return await self._action(node, self.driver._recover_action(operation))

    # ------------------------------------------------------------------ images

    @_names_driver
    async def list_images(
        self,
        location: NodeLocation | str | None = None,
        ex_os: str | None = None,
        ex_arch: str | None = None,
        ex_endorser: str | None = None,
        ex_include_expired: bool = False,
        ex_include_deprecated: bool = False,
    ) -> list[NodeImage]:
        d = self.driver
        loc = d._location(location)
        if _opennebula.is_plain(d, loc.id):
            return await _opennebula.list_images_async(d, loc.id)
        records = await self._core.list_images_async(
            loc.id, ex_os, ex_arch, ex_endorser, ex_include_expired, ex_include_deprecated
        )
        return [d._image_from(*r) for r in records]

    @_names_driver
    async def get_image(
        self,
        image_id: str,
        location: NodeLocation | str | None = None,
        ex_include_expired: bool = False,
    ) -> NodeImage:
        d = self.driver
        loc = d._location(location)
        if _opennebula.is_plain(d, loc.id):
            return await _opennebula.get_image_async(d, loc.id, image_id)
        return d._to_image(await self._core.get_image_async(loc.id, image_id, ex_include_expired))

    # ------------------------------------------------------------------ volumes

    @_names_driver
    async def list_volumes(
        self,
        ex_location: NodeLocation | str | None = None,
        ex_strict: bool = False,
        ex_partial: bool = False,
    ) -> list[StorageVolume]:
        d = self.driver
        site = None if ex_location is None else d._location(ex_location).id
        (records, failures), (plain, plain_failures) = await asyncio.gather(
            self._core.list_volumes_async(site, ex_strict),
            _opennebula.list_volumes_async(d, site, ex_strict),
        )
        return d._listed_volumes(site, ex_partial, records, [*failures, *plain_failures], plain)

    @_names_driver
    async def create_volume(
        self,
        size: int,
        name: str,
        location: NodeLocation | str | None = None,
        snapshot: Any = None,
        ex_visibility: str = "private",
        ex_datastore: str | int | None = None,
    ) -> StorageVolume:
        d = self.driver
        request = d._volume_request(size, name, location, snapshot, ex_visibility)
        if _opennebula.is_plain(d, request[0]):
            return await _opennebula.create_volume_async(d, *request[:3], ex_datastore)
        return d._to_volume(await self._core.create_volume_async(*request))

    @_names_driver
    async def destroy_volume(self, volume: StorageVolume) -> bool:
        site = self.driver._volume_site(volume)
        if _opennebula.is_plain(self.driver, site):
            return await _opennebula.destroy_volume_async(self.driver, site, volume)
        await self._core.destroy_volume_async(site, volume.id)
        return True

    @_names_driver
    async def attach_volume(
        self, node: Node, volume: StorageVolume, device: str | None = None
    ) -> bool:
        d = self.driver
        site, vm = d._attach_request(node, volume)
        if _opennebula.is_plain(d, site):
            return await _opennebula.attach_volume_async(d, site, vm, volume, device)
        got = await self._core.attach_volume_async(site, vm, volume.id)
        return d._attached(volume, site, vm, got, device)

    @_names_driver
    async def detach_volume(self, volume: StorageVolume) -> bool:
        d = self.driver
        site = d._volume_site(volume)
        if _opennebula.is_plain(d, site):
            return await _opennebula.detach_volume_async(d, site, volume)
        return d._detached(volume, site, await self._core.detach_volume_async(site, volume.id))
