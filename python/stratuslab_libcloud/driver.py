"""The libcloud ``NodeDriver`` for StratusLab.

Thin on purpose: the Rust core (``stratuslab_libcloud._stratuslab``) does every byte of I/O and
all parsing, across all sites concurrently, with the GIL released; this module turns its plain
records into libcloud objects.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from libcloud import security
from libcloud.common import base as libcloud_base
from libcloud.compute.base import (
    Node,
    NodeAuthPassword,
    NodeAuthSSHKey,
    NodeDriver,
    NodeImage,
    NodeLocation,
    NodeSize,
    StorageVolume,
)
from libcloud.compute.types import NodeState, StorageVolumeState

from . import _opennebula, _stratuslab
from ._logging import install_libcloud_debug, warn_if_exposed
from .errors import StratusLabConfigError, StratusLabSiteWarning

__all__ = ["StratusLabNodeDriver"]

log = logging.getLogger("stratuslab_libcloud")

ConfigSource = str | os.PathLike[str] | IO[str] | IO[bytes]

_ENV_PREFIX = "STRATUSLAB_"


def _node_id(site: str, vm_id: int) -> str:
    return f"{vm_id}@{site}"


def _read_config(source: ConfigSource) -> tuple[str | bytes, str]:
    """Text (or bytes) and origin of a config given as a path or an open file."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        warn_if_exposed(path)
        return _stratuslab.read_config_file(str(path)), str(path)
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        origin = str(getattr(source, "name", "<file object>"))
        try:
            data = source.read()
        except Exception as exc:
            raise StratusLabConfigError(
                f"{origin}: cannot read the configuration: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(data, (str, bytes)):
            raise StratusLabConfigError(f"{origin}: read() returned {type(data).__name__}")
        return data, origin
    raise TypeError(f"ex_config_file must be a path or an open file, not {type(source).__name__}")


class StratusLabNodeDriver(NodeDriver):
    """Libcloud compute driver for StratusLab (OpenNebula 3.x behind one-proxy, pdisk volumes,
    Marketplace images), for every site of a ``stratuslab-user.cfg`` at once.

    :param key: user name (overrides the file's ``username`` for the default site).
    :param secret: password (likewise ``password``).
    :param secure: kept for libcloud compatibility; the scheme comes from the endpoint.
    :param host: compute endpoint (host or URL); with no configuration file it defines a single
        site named ``default``.
    :param port: port for a bare ``host``.
    :param ex_config_file: path or open file of a ``stratuslab-user.cfg``; default
        ``~/.stratuslab/stratuslab-user.cfg`` when it exists.
    :param ex_default_location: the site used when a call names no location.
    :param ex_pdisk_endpoint: pdisk endpoint for the default site.
    :param ex_marketplace_endpoint: Marketplace endpoint for the default site.
    :param ex_pem_certificate: PEM client certificate (certificate mode when no password).
    :param ex_pem_key: PEM key of that certificate.
    :param ex_public_key_file: SSH public key put in the VM context when ``auth`` is not given.
    :param ex_ca_cert: PEM file of trusted CAs (beats ``libcloud.security.CA_CERTS_PATH``).
    :param ex_verify_ssl: verify server certificates
        (default ``libcloud.security.VERIFY_SSL_CERT``).
    :param timeout: seconds per request (default: the site's ``endpoint_timeout``, else 60).
    :param retry_delay: first delay between retries of reads, when retries are on.
    :param backoff: multiplier of that delay.
    :param ex_retries: attempts for idempotent reads (default 3 when
        ``LIBCLOUD_RETRY_FAILED_HTTP_REQUESTS`` is set, else 1).
    :param stratuslab_user_config: alias of ``ex_config_file`` (2014 driver).
    :param stratuslab_default_location: alias of ``ex_default_location`` (2014 driver).
    """

    type = "stratuslab"
    name = "StratusLab"
    website = "http://stratuslab.eu/"
    features: dict[str, list[str]] = {"create_node": ["ssh_key"]}

    NODE_STATE_MAP: dict[str, NodeState] = {s.value: s for s in NodeState}

    def __init__(
        self,
        key: str | None = None,
        secret: str | None = None,
        secure: bool = True,
        host: str | None = None,
        port: int | None = None,
        *,
        ex_config_file: ConfigSource | None = None,
        ex_default_location: str | None = None,
        ex_pdisk_endpoint: str | None = None,
        ex_site_type: str | None = None,
        ex_marketplace_endpoint: str | None = None,
        ex_pem_certificate: str | None = None,
        ex_pem_key: str | None = None,
        ex_public_key_file: str | None = None,
        ex_ca_cert: str | None = None,
        ex_verify_ssl: bool | None = None,
        timeout: float | None = None,
        retry_delay: float | None = None,
        backoff: float | None = None,
        ex_retries: int | None = None,
        stratuslab_user_config: ConfigSource | None = None,
        stratuslab_default_location: str | None = None,
    ) -> None:
        # BaseDriver.__init__ is skipped on purpose (as libcloud's DummyNodeDriver does): it
        # builds an HTTP connection we never use and drops unknown keyword arguments silently.
        if ex_config_file is not None and stratuslab_user_config is not None:
            raise TypeError("give ex_config_file or stratuslab_user_config, not both")
        if ex_default_location is not None and stratuslab_default_location is not None:
            raise TypeError("give ex_default_location or stratuslab_default_location, not both")
        config = ex_config_file if ex_config_file is not None else stratuslab_user_config
        default_location = (
            ex_default_location if ex_default_location is not None else stratuslab_default_location
        )
        self.key = key
        self.secret = None  # never kept on the Python object
        self.secure = secure
        self.host = host
        self.port = port  # type: ignore[assignment]  # libcloud says int; None = no port, as there
        self.region = None
        self.api_version = None
        self.timeout = timeout

        args: dict[str, str] = {}
        if key is not None:
            args["username"] = key
        if secret is not None:
            args["password"] = secret
        if host is not None:
            args["endpoint"] = f"{host}:{port}" if port is not None and "/" not in host else host
        for name, value in (
            ("pdisk_endpoint", ex_pdisk_endpoint),
            ("marketplace_endpoint", ex_marketplace_endpoint),
            ("pem_certificate", ex_pem_certificate),
            ("pem_key", ex_pem_key),
            ("user_public_key_file", ex_public_key_file),
            ("site_type", ex_site_type),
        ):
            if value is not None:
                args[name] = value

        text: str | bytes | None = None
        origin: str | None = None
        if config is not None:
            text, origin = _read_config(config)
        else:
            default = _stratuslab.default_config_path()
            if default is not None and Path(default).exists():
                text, origin = _read_config(default)
            elif host is None and "STRATUSLAB_ENDPOINT" not in os.environ:
                raise StratusLabConfigError(
                    f"no configuration: {default or '~/.stratuslab/stratuslab-user.cfg'} does "
                    "not exist and no host was given"
                )

        verify = security.VERIFY_SSL_CERT if ex_verify_ssl is None else ex_verify_ssl
        ca_file = ex_ca_cert
        if ca_file is None and verify:
            ca_file = _ca_from_libcloud()
        if not verify:
            log.warning(
                "TLS certificate verification is OFF for this StratusLab driver: anyone on the "
                "path can read the credentials"
            )
        retry_on = bool(
            os.environ.get("LIBCLOUD_RETRY_FAILED_HTTP_REQUESTS")
            or libcloud_base.RETRY_FAILED_HTTP_REQUESTS
        )
        if ex_retries is not None and (
            isinstance(ex_retries, bool)
            or not isinstance(ex_retries, int)
            or not 1 <= ex_retries <= 100
        ):
            raise ValueError(
                f"ex_retries must be a number of attempts from 1 to 100, not {ex_retries!r}"
            )
        attempts = ex_retries if ex_retries is not None else (3 if retry_on else 1)
        env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIX)}
        install_libcloud_debug()
        self._core = _stratuslab.Core(
            config=text,
            origin=origin,
            env=env,
            args=args,
            default_site=default_location,
            timeout=timeout,
            verify=bool(verify),
            ca_file=ca_file,
            retry_attempts=attempts,
            retry_delay=1.0 if retry_delay is None else retry_delay,
            backoff=1.0 if backoff is None else backoff,
        )
        self._sizes = [self._to_size(s) for s in self._core.sizes()]
        self._locations = [
            NodeLocation(id=i, name=n, country=c, driver=self, extra=extra)
            for (i, n, c, extra) in self._core.locations()
        ]
        if key is None:
            # libcloud's ``key`` is the user name: the default site's, from the file or environment.
            self.key = self._location(None).extra["username"]

    def __repr__(self) -> str:
        return f"<StratusLabNodeDriver sites={self._core.site_names()!r} user={self.key!r}>"

    # ------------------------------------------------------------------ helpers

    @property
    def ex_default_location(self) -> NodeLocation:
        """The site used when a call names no location."""
        return self._location(None)

    def _location(self, location: NodeLocation | str | None) -> NodeLocation:
        if location is None:
            wanted = self._core.default_site()
        elif isinstance(location, NodeLocation):
            if location.driver is not self and location.driver.__class__ is not self.__class__:
                raise ValueError(
                    f"location {location.id!r} belongs to another driver "
                    f"({type(location.driver).__name__})"
                )
            wanted = location.id
        elif isinstance(location, str):
            wanted = location
        else:
            raise TypeError(f"location must be a NodeLocation or a site name, not {location!r}")
        for loc in self._locations:
            if loc.id == wanted:
                return loc
        known = ", ".join(loc.id for loc in self._locations)
        raise ValueError(f"unknown location {wanted!r} (known sites: {known})")

    def _site_of_node(self, node: Node | str) -> tuple[str, int]:
        node_id = node.id if isinstance(node, Node) else node
        if not isinstance(node_id, str):
            raise TypeError(f"node must be a Node or a node id, not {node!r}")
        vm, sep, site = node_id.partition("@")
        if not sep or not (vm.isascii() and vm.isdigit() and len(vm) <= 18):
            raise ValueError(f"{node_id!r} is not a StratusLab node id (<vm id>@<site>)")
        self._location(site)
        return site, int(vm)

    def _to_size(self, rec: tuple[str, int, int, int]) -> NodeSize:
        name, cpu, ram, swap = rec
        return NodeSize(
            id=name,
            name=name,
            ram=ram,
            disk=-(-swap // 1024),
            bandwidth=None,
            price=None,  # type: ignore[arg-type]  # libcloud says float; StratusLab has no prices
            driver=self,
            extra={"cpu": cpu, "swap_mib": swap},
        )

    def _to_node(self, rec: tuple[Any, ...]) -> Node:
        return self._node_from(*rec)

    def _node_from(
        self,
        site: str,
        vm_id: int,
        name: str,
        state: str,
        public_ips: list[str],
        private_ips: list[str],
        size: tuple[str, int, int, int] | None,
        image_id: str | None,
        created: int,
        extra: dict[str, Any],
    ) -> Node:
        # Called once per VM of a listing (10,000 at a big site): keep it to construction.
        return Node(
            id=f"{vm_id}@{site}",
            name=name,
            state=self.NODE_STATE_MAP.get(state, NodeState.UNKNOWN),
            public_ips=public_ips,
            private_ips=private_ips,
            driver=self,
            size=None if size is None else self._to_size(size),
            image=None if image_id is None else NodeImage(id=image_id, name=image_id, driver=self),
            extra=extra,
            created_at=datetime.fromtimestamp(created, tz=timezone.utc) if created else None,
        )

    def _to_image(self, rec: tuple[str, str, dict[str, Any]]) -> NodeImage:
        return NodeImage(id=rec[0], name=rec[1], driver=self, extra=rec[2])

    def _to_volume(self, rec: tuple[str, str, int, str, dict[str, Any]]) -> StorageVolume:
        uuid, name, size, state, extra = rec
        return StorageVolume(
            id=uuid,
            name=name,
            size=size,
            driver=self,
            state=StorageVolumeState(state),
            extra=extra,
        )

    def _warn_failures(self, what: str, failures: Sequence[tuple[str, BaseException]]) -> None:
        for site, exc in failures:
            log.warning("%s: site %r failed: %s", what, site, exc)
            warnings.warn(
                f"{what}: site {site!r} failed and is left out: {exc}",
                StratusLabSiteWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ locations and sizes

    def list_locations(self) -> list[NodeLocation]:
        """One location per site of the configuration."""
        return list(self._locations)

    def list_sizes(self, location: NodeLocation | None = None) -> list[NodeSize]:
        """The instance types: StratusLab's defaults plus the file's ``[instance_types]``."""
        if location is not None:
            self._location(location)
        return list(self._sizes)

    # ------------------------------------------------------------------ nodes

    def list_nodes(
        self, ex_location: NodeLocation | str | None = None, ex_strict: bool = False
    ) -> list[Node]:
        """The caller's VMs at every site (or one), queried concurrently.

        A site that fails is left out with a :class:`StratusLabSiteWarning` and a log record,
        unless ``ex_strict`` is true (then its error is raised).
        """
        site = None if ex_location is None else self._location(ex_location).id
        # Each node is built as soon as its piece of the reply is read (with the cyclic GC
        # paused), while the core reads the rest on another thread.
        nodes, failures = self._core.list_nodes(site, ex_strict, self._node_from)
        self._warn_failures("list_nodes", failures)
        return nodes

    def ex_get_node(self, node_id: str) -> Node:
        """One node by id (``<vm id>@<site>``), fresh from ``one.vm.info``."""
        site, vm = self._site_of_node(node_id)
        return self._to_node(self._core.get_node(site, vm))

    def create_node(
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
    ) -> Node:
        """Allocates one VM and returns at once (use ``wait_until_running`` to wait).

        ``image`` is a Marketplace image (27-character identifier); the SSH public key comes from
        ``auth`` (a :class:`NodeAuthSSHKey`), else ``ex_public_key_file``, else the site's
        ``user_public_key_file``. ``ex_network`` is ``public`` (default), ``private`` or
        ``local``; ``ex_context`` adds context variables.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        loc = self._location(location)
        known = self._known_size(size)
        if auth is not None and not isinstance(auth, NodeAuthSSHKey):
            raise ValueError(
                f"StratusLab nodes take an SSH key (NodeAuthSSHKey), not {type(auth).__name__}"
            )
        if isinstance(image, NodeImage):
            if not isinstance(image.driver, StratusLabNodeDriver):
                raise ValueError(
                    f"image {image.id!r} belongs to another driver ({type(image.driver).__name__})"
                )
            image_id = image.id
        else:
            image_id = image
        if not isinstance(image_id, str):
            raise TypeError(f"image must be a NodeImage or an image id, not {image!r}")
        public_key = auth.pubkey if auth is not None else None
        context = list((ex_context or {}).items())
        rec = self._core.create_node(
            loc.id,
            name,
            known.id,
            int(known.extra["cpu"]),
            int(known.ram),
            int(known.extra["swap_mib"]),
            image_id,
            public_key,
            ex_public_key_file,
            ex_network,
            context,
            ex_disks_bus,
            None
            if ex_volatile_disk_gib is None
            else _count(ex_volatile_disk_gib, "ex_volatile_disk_gib"),
        )
        return self._to_node(rec)

    def _known_size(self, size: NodeSize) -> NodeSize:
        """This driver's instance type with ``size``'s id (its CPU, RAM and swap are used, not
        whatever the given object carries)."""
        if not isinstance(size, NodeSize):
            raise TypeError(f"size must be a NodeSize, not {type(size).__name__}")
        if not isinstance(size.driver, StratusLabNodeDriver):
            raise ValueError(
                f"size {size.id!r} belongs to another driver ({type(size.driver).__name__})"
            )
        for known in self._sizes:
            if known.id == size.id:
                return known
        names = ", ".join(s.id for s in self._sizes)
        raise ValueError(f"unknown size {size.id!r} (known sizes: {names})")

    def _action(self, node: Node | str, action: str) -> bool:
        site, vm = self._site_of_node(node)
        self._core.node_action(site, vm, action)
        return True

    def destroy_node(self, node: Node) -> bool:
        """Deletes the VM at once (``finalize`` on OpenNebula 3.x)."""
        return self._action(node, "destroy")

    def reboot_node(self, node: Node) -> bool:
        """Reboots the VM (``reboot``; OpenNebula 3.2 cannot, and says so)."""
        return self._action(node, "reboot")

    def stop_node(self, node: Node) -> bool:
        """Powers the VM off (``poweroff`` on OpenNebula ≥ 3.8, ``stop`` on 3.2)."""
        return self._action(node, "stop")

    def start_node(self, node: Node) -> bool:
        """Starts a stopped/powered-off/suspended VM again."""
        return self._action(node, "start")

    # ------------------------------------------------------------------ images

    def list_images(
        self,
        location: NodeLocation | str | None = None,
        ex_os: str | None = None,
        ex_arch: str | None = None,
        ex_endorser: str | None = None,
        ex_include_expired: bool = False,
        ex_include_deprecated: bool = False,
    ) -> list[NodeImage]:
        """Images of the location's Marketplace: its valid entries, plus its expired ones
        (``ex_include_expired``) and/or its deprecated ones whatever their date
        (``ex_include_deprecated``); the Marketplace's clock decides what is valid. One image per
        identifier: a valid entry before an expired or deprecated one, then the newest
        endorsement. ``ex_os``, ``ex_arch`` (case-insensitive) and ``ex_endorser`` (e-mail)
        filter. Unreadable entries are skipped with a log warning."""
        loc = self._location(location)
        if _opennebula.is_plain(self, loc.id):
            return _opennebula.list_images(self, loc.id)
        # Each image is built as soon as its piece of the listing is read (cyclic GC paused),
        # while the core reads the rest on another thread.
        return self._core.list_images(
            loc.id,
            ex_os,
            ex_arch,
            ex_endorser,
            ex_include_expired,
            ex_include_deprecated,
            self._image_from,
        )

    def _image_from(self, image_id: str, name: str, extra: dict[str, Any]) -> NodeImage:
        # Arguments by position: a third of NodeImage's construction time.
        return NodeImage(image_id, name, self, extra)

    def get_image(
        self,
        image_id: str,
        location: NodeLocation | str | None = None,
        ex_include_expired: bool = False,
    ) -> NodeImage:
        """One Marketplace image by its 27-character identifier (``ValueError`` otherwise): the
        valid entry, or with ``ex_include_expired`` any entry (expired or deprecated) when none
        is valid. None → :class:`StratusLabProviderError` with ``http_code`` 404."""
        loc = self._location(location)
        if _opennebula.is_plain(self, loc.id):
            return _opennebula.get_image(self, loc.id, image_id)
        return self._to_image(self._core.get_image(loc.id, image_id, ex_include_expired))

    # ------------------------------------------------------------------ volumes

    def list_volumes(
        self, ex_location: NodeLocation | str | None = None, ex_strict: bool = False
    ) -> list[StorageVolume]:
        """The caller's pdisk volumes at every site (or one), queried concurrently."""
        site = None if ex_location is None else self._location(ex_location).id
        records, failures = self._core.list_volumes(site, ex_strict)
        plain, plain_failures = _opennebula.list_volumes(self, site, ex_strict)
        self._warn_failures("list_volumes", [*failures, *plain_failures])
        return [self._to_volume(r) for r in records] + plain

    def create_volume(
        self,
        size: int,
        name: str,
        location: NodeLocation | str | None = None,
        snapshot: Any = None,
        ex_visibility: str = "private",
        ex_datastore: str | int | None = None,
    ) -> StorageVolume:
        """Creates a persistent disk of ``size`` GiB (1..1024) tagged ``name`` (1..40
        characters once surrounding space is removed); ``ex_visibility`` is ``private`` or
        ``public``."""
        if snapshot is not None:
            raise ValueError("StratusLab pdisk cannot create a volume from a snapshot")
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(
                f"size must be an int number of GiB, not {type(size).__name__} {size!r}"
            )
        if not 1 <= size <= 1024:
            raise ValueError(f"volume size must be between 1 and 1024 GiB, not {size}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        loc = self._location(location)
        if _opennebula.is_plain(self, loc.id):
            return _opennebula.create_volume(self, loc.id, size, name, ex_datastore)
        return self._to_volume(self._core.create_volume(loc.id, size, name, ex_visibility))

    def _volume_site(self, volume: StorageVolume) -> str:
        if not isinstance(volume, StorageVolume):
            raise TypeError(f"volume must be a StorageVolume, not {type(volume).__name__}")
        site = (volume.extra or {}).get("location")
        if not site:
            raise ValueError(f"volume {volume.id!r} has no location in its extra")
        return str(self._location(site).id)

    def destroy_volume(self, volume: StorageVolume) -> bool:
        """Deletes the disk (refused by pdisk while it is attached)."""
        if _opennebula.is_plain(self, self._volume_site(volume)):
            return _opennebula.destroy_volume(self, self._volume_site(volume), volume)
        self._core.destroy_volume(self._volume_site(volume), volume.id)
        return True

    def attach_volume(self, node: Node, volume: StorageVolume, device: str | None = None) -> bool:
        """Hot-plugs the disk into a RUNNING node of the same site; pdisk picks the device,
        which is stored in ``volume.extra["device"]`` (a different ``device`` is reported)."""
        site, vm = self._site_of_node(node)
        vsite = self._volume_site(volume)
        if vsite != site:
            raise ValueError(
                f"volume {volume.id} is at site {vsite!r} and node {node.id} at {site!r}"
            )
        if _opennebula.is_plain(self, site):
            return _opennebula.attach_volume(self, site, vm, volume, device)
        got = self._core.attach_volume(site, vm, volume.id)
        if device is not None and device.removeprefix("/dev/") != got.removeprefix("/dev/"):
            warnings.warn(
                f"pdisk chose device {got} for volume {volume.id}, not {device} "
                "(pdisk picks the device)",
                RuntimeWarning,
                stacklevel=2,
            )
        node_id = _node_id(site, vm)
        extra: dict[str, Any] = volume.extra if volume.extra is not None else {}
        volume.extra = extra
        extra["device"] = got
        extra["node"] = node_id
        extra["mounts"] = [*extra.get("mounts", []), (node_id, got)]
        extra["count"] = int(extra.get("count") or 0) + 1
        volume.state = StorageVolumeState.INUSE
        return True

    def detach_volume(self, volume: StorageVolume) -> bool:
        """Hot-unplugs the disk from every VM of the caller it is mounted on."""
        site = self._volume_site(volume)
        if _opennebula.is_plain(self, site):
            return _opennebula.detach_volume(self, site, volume)
        detached = self._core.detach_volume(site, volume.id)
        extra: dict[str, Any] = volume.extra if volume.extra is not None else {}
        volume.extra = extra
        gone = {_node_id(site, vm) for vm, _ in detached}
        mounts = [m for m in extra.get("mounts", []) if m[0] not in gone]
        extra["mounts"] = mounts
        extra["count"] = max(int(extra.get("count") or 0) - len(detached), 0)
        if mounts:
            extra["node"], extra["device"] = mounts[0]
        else:
            extra.pop("device", None)
            extra.pop("node", None)
        volume.state = StorageVolumeState.INUSE if extra["count"] else StorageVolumeState.AVAILABLE
        return True

    # ------------------------------------------------------------------ networks

    def ex_list_networks(
        self, location: NodeLocation | str | None = None, ex_strict: bool = False
    ) -> list[_opennebula.OpenNebulaNetwork]:
        """The virtual networks of every plain OpenNebula site (or of ``location``, which must
        be one): id ``<vnet id>@<site>``, name, and in ``extra`` the address ranges and leases
        used. ``create_node``'s ``ex_network`` takes their names or ids."""
        site = None if location is None else self._location(location).id
        networks, failures = _opennebula.list_networks(self, site, ex_strict)
        self._warn_failures("ex_list_networks", failures)
        return networks


def _count(value: Any, what: str) -> int:
    """A non-negative integer argument for the core: ValueError (not OverflowError) when out of
    range."""
    number = int(value)
    if not 0 <= number < 2**32:
        raise ValueError(f"{what} must be between 0 and {2**32 - 1}, not {number}")
    return number


def _ca_from_libcloud() -> str | None:
    """libcloud's CA_CERTS_PATH when it names a file (it may be a list in old versions)."""
    path = getattr(security, "CA_CERTS_PATH", None)
    if isinstance(path, (list, tuple)):
        path = next((p for p in path if p and os.path.isfile(p)), None)
    if path and os.path.isfile(str(path)):
        return str(path)
    return None
