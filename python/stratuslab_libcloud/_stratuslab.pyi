"""Type stubs of the Rust extension ``stratuslab_libcloud._stratuslab`` (checked against the
compiled module by ``make stubtest``)."""

import asyncio
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar, final

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_SETTLE",
    "AsyncFleet",
    "Core",
    "LocalCloudServer",
    "PlainSites",
    "__version__",
    "_debug_build",
    "_panic_for_tests",
    "default_config_path",
    "read_config_file",
    "reset_log_cache",
    "set_libcloud_debug",
]

__version__: str
_T = TypeVar("_T")  # what a listing's `build` callback returns
_debug_build: bool  # built without optimisations (maturin develop)
DEFAULT_MAX_IN_FLIGHT: int  # fleet requests in flight per site
DEFAULT_SETTLE: float  # seconds a create waits for a VM whose request may be in flight

_SizeTuple: TypeAlias = tuple[str, int, int, int]  # name, cpu, ram MiB, swap MiB
_NodeTuple: TypeAlias = tuple[
    str,  # site
    int,  # vm id
    str,  # name
    str,  # libcloud NodeState value
    list[str],  # public IPs
    list[str],  # private IPs
    _SizeTuple | None,  # size
    str | None,  # image id
    int,  # created (unix seconds, 0 if unknown)
    dict[str, Any],  # extra
]
_ImageTuple: TypeAlias = tuple[str, str, dict[str, Any]]  # id, name, extra
_VolumeTuple: TypeAlias = tuple[str, str, int, str, dict[str, Any]]  # uuid, name, GiB, state, extra
_LocationTuple: TypeAlias = tuple[str, str, str, dict[str, Any]]  # id, name, country, extra
_Failures: TypeAlias = list[tuple[str, BaseException]]  # (site, exception) per failed site
# size, cpu, ram MiB, swap MiB, image, public key, key file, network, context, bus, volatile GiB
_CreateArgs: TypeAlias = tuple[
    str,
    int,
    int,
    int,
    str,
    str | None,
    str | None,
    str | None,
    list[tuple[str, str]],
    str | None,
    int | None,
]

def reset_log_cache() -> None: ...
def set_libcloud_debug(on: bool) -> None: ...
def _panic_for_tests() -> None: ...  # raises StratusLabError from a Rust panic
def default_config_path() -> str | None: ...
def read_config_file(path: str) -> bytes: ...

@final
class Core:
    def __new__(
        cls,
        *,
        config: str | bytes | None,
        origin: str | None,
        env: dict[str, str],
        args: dict[str, str],
        default_site: str | None,
        timeout: float | None,
        verify: bool,
        ca_file: str | None,
        retry_attempts: int,
        retry_delay: float,
        backoff: float,
        proxy_all: str | None = None,
        proxy_https: str | None = None,
        proxy_http: str | None = None,
        no_proxy: str | None = None,
    ) -> Core: ...
    def set_proxy(
        self,
        proxy_all: str | None = None,
        proxy_https: str | None = None,
        proxy_http: str | None = None,
        no_proxy: str | None = None,
    ) -> None: ...
    def site_names(self) -> list[str]: ...
    def default_site(self) -> str: ...
    def locations(self) -> list[_LocationTuple]: ...
    def sizes(self) -> list[_SizeTuple]: ...
    def list_nodes(
        self, site: str | None, strict: bool, build: Callable[..., _T], volumes: bool = True
    ) -> tuple[list[_T], _Failures, _Failures]:
        """`build(*record)` is called with each `_NodeTuple`'s items; then the failed sites,
        then the sites whose volumes are unknown."""
        ...
    def get_node(self, site: str, vm_id: int) -> tuple[_NodeTuple, BaseException | None]: ...
    def create_nodes(
        self,
        sites: list[str],
        names: list[str],
        tokens: list[str | None],
        args: _CreateArgs,
        max_in_flight: int,
        settle: float | None,
        sink: Callable[[int, _NodeTuple | None, BaseException | None], object],
    ) -> tuple[list[tuple[_NodeTuple | None, BaseException | None]], BaseException | None]: ...
    def destroy_nodes(
        self,
        nodes: list[tuple[str, int]],
        max_in_flight: int,
        sink: Callable[[int, bool | None, BaseException | None], object],
    ) -> tuple[list[tuple[bool | None, BaseException | None]], BaseException | None]: ...
    def create_node(
        self,
        site: str,
        name: str,
        args: _CreateArgs,
        client_token: str | None,
        settle: float | None,
    ) -> _NodeTuple: ...
    def node_action(self, site: str, vm_id: int, action: str) -> BaseException | None: ...
    def list_images(
        self,
        site: str,
        os: str | None,
        arch: str | None,
        endorser: str | None,
        include_expired: bool,
        include_deprecated: bool,
        build: Callable[..., _T],
    ) -> list[_T]:
        """`build(*image)` is called with each `_ImageTuple`'s items."""
        ...
    def get_image(self, site: str, image_id: str, include_expired: bool) -> _ImageTuple: ...
    def list_volumes(
        self, site: str | None, strict: bool
    ) -> tuple[list[_VolumeTuple], _Failures]: ...
    def create_volume(self, site: str, size: int, name: str, visibility: str) -> _VolumeTuple: ...
    def destroy_volume(self, site: str, uuid: str) -> None: ...
    def attach_volume(self, site: str, vm_id: int, uuid: str) -> str: ...
    def detach_volume(self, site: str, uuid: str) -> list[tuple[int, str]]: ...
    # asyncio twins: each returns an asyncio future (of the running loop) of what the
    # synchronous method returns; listings give records, built by the caller.
    def list_nodes_async(
        self, site: str | None, strict: bool, build: Callable[..., _T], volumes: bool = True
    ) -> asyncio.Future[tuple[list[_T], _Failures, _Failures]]: ...
    def get_node_async(
        self, site: str, vm_id: int, build: Callable[..., _T]
    ) -> asyncio.Future[tuple[_T, BaseException | None]]: ...
    def create_node_async(
        self,
        site: str,
        name: str,
        args: _CreateArgs,
        client_token: str | None,
        settle: float | None,
    ) -> asyncio.Future[_NodeTuple]: ...
    def node_action_async(
        self, site: str, vm_id: int, action: str
    ) -> asyncio.Future[BaseException | None]: ...
    def list_images_async(
        self,
        site: str,
        os: str | None,
        arch: str | None,
        endorser: str | None,
        include_expired: bool,
        include_deprecated: bool,
    ) -> asyncio.Future[list[_ImageTuple]]: ...
    def get_image_async(
        self, site: str, image_id: str, include_expired: bool
    ) -> asyncio.Future[_ImageTuple]: ...
    def list_volumes_async(
        self, site: str | None, strict: bool
    ) -> asyncio.Future[tuple[list[_VolumeTuple], _Failures]]: ...
    def create_volume_async(
        self, site: str, size: int, name: str, visibility: str
    ) -> asyncio.Future[_VolumeTuple]: ...
    def destroy_volume_async(self, site: str, uuid: str) -> asyncio.Future[None]: ...
    def attach_volume_async(self, site: str, vm_id: int, uuid: str) -> asyncio.Future[str]: ...
    def detach_volume_async(
        self, site: str, uuid: str
    ) -> asyncio.Future[list[tuple[int, str]]]: ...
    def create_nodes_async(
        self,
        sites: list[str],
        names: list[str],
        tokens: list[str | None],
        args: _CreateArgs,
        max_in_flight: int,
        settle: float | None,
    ) -> AsyncFleet: ...
    def destroy_nodes_async(
        self, nodes: list[tuple[str, int]], max_in_flight: int
    ) -> AsyncFleet: ...
    def opennebula(self) -> PlainSites: ...

@final
class AsyncFleet:
    # values: node tuples (create_nodes_async) or True (destroy_nodes_async)
    def next(self) -> asyncio.Future[list[tuple[int, Any, BaseException | None]] | None]: ...
    def stop(self) -> None: ...
    def abort(self) -> None: ...
    def outcomes(self) -> asyncio.Future[list[tuple[Any, BaseException | None]]]: ...

@final
class PlainSites:
    def list_images(self, site: str) -> list[_ImageTuple]: ...
    def get_image(self, site: str, image_id: str) -> _ImageTuple: ...
    def list_networks(
        self, site: str | None, strict: bool
    ) -> tuple[list[_ImageTuple], _Failures]: ...  # (id, name, extra) per network
    def list_volumes(
        self, site: str | None, strict: bool
    ) -> tuple[list[_VolumeTuple], _Failures]: ...
    def create_volume(
        self, site: str, size: int, name: str, datastore: str | None
    ) -> _VolumeTuple: ...
    def destroy_volume(self, site: str, volume_id: str) -> None: ...
    def attach_volume(
        self, site: str, vm_id: int, volume_id: str, device: str | None
    ) -> _VolumeTuple: ...
    def detach_volume(self, site: str, volume_id: str) -> list[tuple[int, int]]: ...
    # asyncio twins: asyncio futures of what the synchronous methods return
    def list_images_async(self, site: str) -> asyncio.Future[list[_ImageTuple]]: ...
    def get_image_async(self, site: str, image_id: str) -> asyncio.Future[_ImageTuple]: ...
    def list_volumes_async(
        self, site: str | None, strict: bool
    ) -> asyncio.Future[tuple[list[_VolumeTuple], _Failures]]: ...
    def create_volume_async(
        self, site: str, size: int, name: str, datastore: str | None
    ) -> asyncio.Future[_VolumeTuple]: ...
    def destroy_volume_async(self, site: str, volume_id: str) -> asyncio.Future[None]: ...
    def attach_volume_async(
        self, site: str, vm_id: int, volume_id: str, device: str | None
    ) -> asyncio.Future[_VolumeTuple]: ...
    def detach_volume_async(
        self, site: str, volume_id: str
    ) -> asyncio.Future[list[tuple[int, int]]]: ...

@final
class LocalCloudServer:
    def __new__(
        cls,
        *,
        sites: list[str],
        users: list[tuple[str, str]],
        version: str,
        boot_step: float,
        latency: float,
        tls: bool,
        port: int,
        public_network: tuple[str, int] | None,
        marketplace: bool,
        site_type: str = ...,
        site_options: list[tuple[str, str | None, str | None]] = ...,
    ) -> LocalCloudServer: ...
    def port(self) -> int: ...
    def base_url(self) -> str: ...
    def config_text(self) -> str: ...
    def ca_file(self) -> str | None: ...
    def endpoints(self, site: str) -> dict[str, str]: ...
    def issue_client_cert(self, user: str) -> tuple[str, str]: ...
    def seed_vms(self, site: str, n: int, owner: str) -> None: ...
    def seed_volumes(self, site: str, n: int, owner: str) -> None: ...
    def seed_images(self, n: int) -> None: ...
    def load_marketplace_document(self, rdf: str) -> str: ...
    def set_clock(self, unix_time: int | None) -> None: ...
    def vm_ids(self, site: str) -> list[int]: ...
    def vm_state(self, site: str, vm_id: int) -> tuple[int, int] | None: ...
    def vm_template(self, site: str, vm_id: int) -> str | None: ...
    def fail_vm(self, site: str, vm_id: int, message: str) -> bool: ...
    def disks(self, site: str) -> list[dict[str, Any]]: ...
    def inject_fault(
        self,
        kind: str,
        site: str | None,
        service_name: str,
        op: str | None,
        status: int | None,
        seconds: float | None,
        code: int | None,
        message: str | None,
        size: int | None,
        times: int | None,
    ) -> None: ...
    def clear_faults(self) -> None: ...
    def request_count(self, site: str | None, service_name: str, op: str | None) -> int: ...
    def dropped_count(self) -> int: ...
    def stop(self) -> None: ...
