"""The libcloud ``NodeDriver`` for StratusLab.

Thin on purpose: the Rust core (``stratuslab_libcloud._stratuslab``) does every byte of I/O and
all parsing, across all sites concurrently, with the GIL released; this module turns its plain
records into libcloud objects.
"""

from __future__ import annotations

import functools
import io
import ipaddress
import logging
import os
import sys
import time
import urllib.parse
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

from libcloud import security
from libcloud.common import base as libcloud_base
from libcloud.common.types import InvalidCredsError, LibcloudError
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
from . import fleet as _fleet
from ._logging import install_libcloud_debug, warn_if_exposed
from .aio import AsyncStratusLabNodeDriver
from .errors import (
    StratusLabConfigError,
    StratusLabSitesError,
    StratusLabSiteWarning,
    StratusLabTimeoutError,
)

__all__ = ["StratusLabNodeDriver"]

log = logging.getLogger("stratuslab_libcloud")

ConfigSource = str | os.PathLike[str] | IO[str] | IO[bytes]

_ENV_PREFIX = "STRATUSLAB_"


def _node_id(site: str, vm_id: int) -> str:
    return f"{vm_id}@{site}"


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _names_driver(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Sets ``driver`` (libcloud's ``LibcloudError.driver``) on what a driver method raises."""

    @functools.wraps(method)
    def named(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except LibcloudError as exc:
            if args and isinstance(args[0], StratusLabNodeDriver):
                args[0]._own(exc)
            raise

    return named


def _is_ipv4(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False


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

    ``help(StratusLabNodeDriver.__init__)`` lists the constructor's parameters.
    """

    type = "stratuslab"
    name = "StratusLab"
    website = "http://stratuslab.eu/"
    features: dict[str, list[str]] = {"create_node": ["ssh_key"]}

    NODE_STATE_MAP: dict[str, NodeState] = {s.value: s for s in NodeState}
    # libcloud's HTTP connection is not used (the Rust core makes the requests): this object
    # carries what scripts use of it, set_http_proxy().
    connection: _Connection  # type: ignore[assignment]

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
        proxy_url: str | None = None,
        stratuslab_user_config: ConfigSource | None = None,
        stratuslab_default_location: str | None = None,
    ) -> None:
        """Reads the configuration (file, ``STRATUSLAB_*`` variables, these arguments) and
        prepares one client per site; nothing is sent until a method is called. Unknown keyword
        arguments raise ``TypeError``.

        :param key: user name (overrides the file's ``username`` for the default site).
        :param secret: password (likewise ``password``).
        :param secure: ``False`` makes a bare ``host`` a plain-HTTP endpoint (``http://host:port``);
            a URL keeps its own scheme.
        :param host: compute endpoint (host or URL); with no configuration file it defines a single
            site named ``default``.
        :param port: port for a bare ``host``.
        :param ex_config_file: path or open file of a ``stratuslab-user.cfg``; default
            ``~/.stratuslab/stratuslab-user.cfg`` when it exists.
        :param ex_default_location: the site used when a call names no location.
        :param ex_pdisk_endpoint: pdisk endpoint for the default site.
        :param ex_site_type: ``"stratuslab"`` (default) or ``"opennebula"`` (a plain OpenNebula
            daemon, ``host`` its ``/RPC2`` URL) for the default site, like the file's ``site_type``.
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
        :param proxy_url: ``http(s)://host:port`` of a proxy every request goes through (libcloud's
            argument); else ``https_proxy``/``http_proxy``/``no_proxy`` (either case) apply.
        :param stratuslab_user_config: alias of ``ex_config_file`` (2014 driver).
        :param stratuslab_default_location: alias of ``ex_default_location`` (2014 driver).
        """
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
            args["endpoint"] = _endpoint(host, port, secure)
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
        proxies = _env_proxies(os.environ)
        if proxy_url is not None:
            proxies["proxy_all"] = _check_proxy_url(proxy_url)
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
            **proxies,
        )
        self._sizes = [self._to_size(s) for s in self._core.sizes()]
        self._locations = [
            NodeLocation(id=i, name=n, country=c, driver=self, extra=extra)
            for (i, n, c, extra) in self._core.locations()
        ]
        if key is None:
            # libcloud's ``key`` is the user name: the default site's, from the file or environment.
            self.key = self._location(None).extra["username"]
        self.connection = _Connection(self, proxy_url)
        # What a pickle holds: the arguments that are no secret (see __reduce__).
        self._pickled_args: dict[str, Any] = {
            "key": key,
            "secure": secure,
            "host": host,
            "port": port,
            "ex_config_file": _config_path(config, origin),
            "ex_default_location": default_location,
            "ex_pdisk_endpoint": ex_pdisk_endpoint,
            "ex_marketplace_endpoint": ex_marketplace_endpoint,
            "ex_pem_certificate": ex_pem_certificate,
            "ex_pem_key": ex_pem_key,
            "ex_public_key_file": ex_public_key_file,
            "ex_ca_cert": ex_ca_cert,
            "ex_verify_ssl": ex_verify_ssl,
            "timeout": timeout,
            "retry_delay": retry_delay,
            "backoff": backoff,
            "ex_retries": ex_retries,
        }
        self._not_rebuildable = _secret_source(secret, env, config)
        self._remember_proxy(proxy_url)

    def __repr__(self) -> str:
        sites = [loc.id for loc in self._locations]
        return f"<StratusLabNodeDriver sites={sites!r} user={self.key!r}>"

    # ------------------------------------------------------------------ pickling and copies

    @property
    def ex_async(self) -> AsyncStratusLabNodeDriver:
        """This driver's asyncio twin (:mod:`stratuslab_libcloud.aio`): the same calls as
        coroutines, over the same core and settings."""
        return AsyncStratusLabNodeDriver(self)

    def _remember_proxy(self, proxy_url: str | None) -> None:
        """Keeps an explicit proxy for the pickle, unless its URL carries a password."""
        if proxy_url is not None and urllib.parse.urlsplit(proxy_url).password is not None:
            self._pickled_args.pop("proxy_url", None)
            self._not_rebuildable = self._not_rebuildable or ("its proxy URL carries a password")
        elif proxy_url is not None:
            self._pickled_args["proxy_url"] = proxy_url

    def __reduce__(self) -> tuple[Any, ...]:
        """A pickle holds no secret: the configuration file's path and the other arguments, from
        which the driver is built again on unpickling. A driver whose password came as an
        argument or from the environment (or whose configuration was an open file) unpickles
        into one that raises :class:`StratusLabConfigError` on first use of a site."""
        offline = (self._core_sizes(), self._core_locations(), self.key)
        return (_unpickle_driver, (self._pickled_args, self._not_rebuildable, offline))

    def __copy__(self) -> StratusLabNodeDriver:
        return self  # a driver is a handle on its sites (thread-safe): copies share it

    def __deepcopy__(self, memo: dict[int, Any]) -> StratusLabNodeDriver:
        return self

    def _core_sizes(self) -> list[tuple[str, int, int, int]]:
        return [
            (s.id, int(s.extra["cpu"]), int(s.ram), int(s.extra["swap_mib"])) for s in self._sizes
        ]

    def _core_locations(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        return [(loc.id, loc.name, loc.country, dict(loc.extra)) for loc in self._locations]

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

    def _site_of_node(self, node: Node | str | None) -> tuple[str, int]:
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

    def _own(self, exc: BaseException) -> BaseException:
        """Names this driver in a remote error (and in each site's error of a multi-site one)."""
        if isinstance(exc, LibcloudError) and getattr(exc, "driver", None) is None:
            exc.driver = self
        for inner in getattr(exc, "errors", {}).values():
            self._own(inner)
        return exc

    def _warn_failures(
        self,
        what: str,
        failures: Sequence[tuple[str, BaseException]],
        left_out: str = "failed and is left out",
    ) -> None:
        # The warning points at the caller's line, past this module's frames.
        level, frame = 1, sys._getframe(0)
        while frame.f_back is not None and frame.f_code.co_filename == __file__:
            frame, level = frame.f_back, level + 1
        for site, exc in failures:
            self._own(exc)
            log.warning("%s: site %r %s: %s", what, site, left_out, exc)
            warnings.warn(
                f"{what}: site {site!r} {left_out}: {exc}",
                StratusLabSiteWarning,
                stacklevel=level,
            )

    def _site_failures(
        self,
        what: str,
        asked: int,
        failures: Sequence[tuple[str, BaseException]],
        partial: bool,
    ) -> None:
        """What a multi-site call does with its failed sites (README "Partial results"): raises
        when every site asked failed (the site's own exception for one site or when all were
        refused credentials, else :class:`StratusLabSitesError` carrying each), raises a refusal
        of credentials unless ``partial``, else warns about each."""
        for _, exc in failures:
            self._own(exc)
        if failures and len(failures) >= asked:
            errors = dict(failures)
            first = failures[0][1]
            if len(errors) == 1 or all(isinstance(e, InvalidCredsError) for e in errors.values()):
                raise first
            raise StratusLabSitesError(
                f"{what}: every site failed: "
                + "; ".join(f"{site!r}: {type(e).__name__}" for site, e in failures),
                errors,
                driver=self,
            )
        if not partial:
            for _, exc in failures:
                if isinstance(exc, InvalidCredsError):
                    raise exc
        self._warn_failures(what, failures)

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

    @_names_driver
    def list_nodes(
        self,
        ex_location: NodeLocation | str | None = None,
        ex_strict: bool = False,
        ex_partial: bool = False,
    ) -> list[Node]:
        """The caller's VMs at every site (or the one named), queried concurrently.

        A site that fails is left out with a :class:`StratusLabSiteWarning` and a log record,
        unless ``ex_strict`` is true (then its error is raised). The call raises when every
        site failed, when the site named by ``ex_location`` failed, and when a site refused the
        credentials (unless ``ex_partial`` is true: then that site is only warned about too).
        ``extra["volumes"]`` is ``None`` (unknown) at a site whose pdisk failed, with a
        :class:`StratusLabSiteWarning` (raised under ``ex_strict``).
        """
        site = None if ex_location is None else self._location(ex_location).id
        # Each node is built as soon as its piece of the reply is read (with the cyclic GC
        # paused), while the core reads the rest on another thread.
        return self._listed_nodes(
            site, ex_partial, *self._core.list_nodes(site, ex_strict, self._node_from)
        )

    def _listed_nodes(
        self,
        site: str | None,
        partial: bool,
        nodes: list[Node],
        failures: Sequence[tuple[str, BaseException]],
        unknown: Sequence[tuple[str, BaseException]],
    ) -> list[Node]:
        asked = 1 if site is not None else len(self._locations)
        self._site_failures("list_nodes", asked, failures, partial)
        self._warn_failures("list_nodes", unknown, "gives no volumes (they are unknown)")
        return nodes

    @_names_driver
    def ex_get_node(self, node_id: Node | str | None) -> Node:
        """One node, by id (``<vm id>@<site>``) or as a :class:`Node`, fresh from
        ``one.vm.info``. (``None`` is accepted by the type only because libcloud types
        ``Node.id`` as optional: it raises ``TypeError``.)"""
        site, vm = self._site_of_node(node_id)
        return self._got_node(site, *self._core.get_node(site, vm))

    def _got_node(
        self, site: str, rec: tuple[Any, ...], volumes_error: BaseException | None
    ) -> Node:
        if volumes_error is not None:
            self._warn_volumes_unknown(site, volumes_error)
        return self._to_node(rec)

    def _warn_volumes_unknown(self, site: str, volumes_error: BaseException) -> None:
        self._warn_failures(
            "ex_get_node", [(site, volumes_error)], "gives no volumes (they are unknown)"
        )

    @_names_driver
    def wait_until_running(
        self,
        nodes: list[Node],
        wait_period: float = 5,
        timeout: float = 600,
        ssh_interface: str = "public_ips",
        force_ipv4: bool = True,
        ex_list_nodes_kwargs: dict[str, Any] | None = None,
    ) -> list[tuple[Node, list[str]]]:
        """Waits until every node is running with an address, as libcloud's own does, asking
        only the sites that hold the nodes, and only their compute service. Raises at once when
        a site refuses the credentials; another failure is retried until ``timeout``
        (then :class:`StratusLabTimeoutError`). ``ex_list_nodes_kwargs`` is accepted for
        libcloud compatibility and not used."""
        wanted, count = self._wanted(nodes, ssh_interface)
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while True:
            listings = [
                (site, self._core.list_nodes(site, False, self._node_from, False))
                for site in wanted
            ]
            ready, last = self._ready(wanted, listings, ssh_interface, force_ipv4, last)
            if len(ready) == count:
                return ready
            time.sleep(self._wait_left(deadline, wait_period, timeout, last))

    def _wanted(self, nodes: list[Node], ssh_interface: str) -> tuple[dict[str, set[str]], int]:
        """``wait_until_running``'s node ids per site, and how many."""
        if ssh_interface not in ("public_ips", "private_ips"):
            raise ValueError(
                f"ssh_interface must be public_ips or private_ips, not {ssh_interface!r}"
            )
        wanted: dict[str, set[str]] = {}
        for node in nodes:
            site, vm = self._site_of_node(node)
            wanted.setdefault(site, set()).add(_node_id(site, vm))
        return wanted, sum(len(ids) for ids in wanted.values())

    def _ready(
        self,
        wanted: dict[str, set[str]],
        listings: list[tuple[str, tuple[list[Node], _stratuslab._Failures, Any]]],
        ssh_interface: str,
        force_ipv4: bool,
        last: BaseException | None,
    ) -> tuple[list[tuple[Node, list[str]]], BaseException | None]:
        """One round of ``wait_until_running``: the nodes ready, and the last site failure
        (a refusal of credentials is raised)."""
        ready: list[tuple[Node, list[str]]] = []
        for site, (listed, failures, _) in listings:
            ids = wanted[site]
            for _, exc in failures:
                self._own(exc)
                if isinstance(exc, InvalidCredsError):
                    raise exc
                last = exc
                log.info("wait_until_running: site %r failed (retrying): %s", site, exc)
            for node in listed:
                if node.id not in ids or node.state != NodeState.RUNNING:
                    continue
                ips = [ip for ip in getattr(node, ssh_interface) if not force_ipv4 or _is_ipv4(ip)]
                if ips:
                    ready.append((node, ips))
        return ready, last

    def _wait_left(
        self, deadline: float, wait_period: float, timeout: float, last: BaseException | None
    ) -> float:
        """How long ``wait_until_running`` sleeps before its next round (raises at the end)."""
        left = deadline - time.monotonic()
        if left <= 0:
            why = "" if last is None else f" (last failure: {last})"
            raise StratusLabTimeoutError(f"Timed out after {timeout} seconds{why}", self)
        return min(wait_period, left)

    @_names_driver
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
        ex_client_token: str | None = None,
        ex_settle: float | None = None,
    ) -> Node:
        """Allocates one VM, exactly once, and returns at once (use ``wait_until_running`` to
        wait).

        ``image`` is a Marketplace image (27-character identifier); the SSH public key comes from
        ``auth`` (a :class:`NodeAuthSSHKey`), else ``ex_public_key_file``, else the site's
        ``user_public_key_file``. ``ex_network`` is ``public`` (default), ``private`` or
        ``local``; ``ex_context`` adds context variables.

        ``ex_client_token`` (1 to 128 of ``A-Za-z0-9._:-``; a fresh one when not given) is stored
        in the VM's template and shown in ``node.extra["client_token"]``: a VM that already
        carries it is returned instead of creating another. ``ex_settle`` (seconds, default
        ``stratuslab_libcloud.fleet.DEFAULT_SETTLE``, 30) is how long a create whose request
        may still be in flight (a timeout) waits for its VM before sending again or giving up.
        See the README's "Exactly-once creation and fleets".
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        loc = self._location(location)
        args = self._create_args(
            size,
            image,
            auth,
            ex_network,
            ex_context,
            ex_public_key_file,
            ex_disks_bus,
            ex_volatile_disk_gib,
        )
        rec = self._core.create_node(
            loc.id, name, args, _fleet._token(ex_client_token), _fleet._settle(ex_settle)
        )
        return self._to_node(rec)

    def _create_args(
        self,
        size: NodeSize,
        image: NodeImage | str,
        auth: NodeAuthSSHKey | NodeAuthPassword | None,
        ex_network: str | None,
        ex_context: Mapping[str, str] | None,
        ex_public_key_file: str | None,
        ex_disks_bus: str | None,
        ex_volatile_disk_gib: int | None,
    ) -> _stratuslab._CreateArgs:
        """What every node of a create shares, checked."""
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
        return (
            known.id,
            int(known.extra["cpu"]),
            int(known.ram),
            int(known.extra["swap_mib"]),
            image_id,
            auth.pubkey if auth is not None else None,
            ex_public_key_file,
            ex_network,
            list((ex_context or {}).items()),
            ex_disks_bus,
            None
            if ex_volatile_disk_gib is None
            else _count(ex_volatile_disk_gib, "ex_volatile_disk_gib"),
        )

    # ------------------------------------------------------------------ fleets

    def ex_create_nodes(
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
        """Creates one node per name, concurrently, each exactly once (as ``create_node``).

        With several locations the nodes are spread over them in turn (``names[i]`` goes to
        ``location[i % len(location)]``). At most ``ex_max_in_flight`` requests are in flight
        per site (default ``stratuslab_libcloud.fleet.DEFAULT_MAX_IN_FLIGHT``, 10: below the
        15 connections oned serves at once by default). ``ex_client_tokens`` gives each node its
        token (as ``ex_client_token``). ``ex_progress(done, total, node_or_exception)`` is
        called in this thread as each node ends. Returns a :class:`FleetResult`; nothing raises
        for a single node. Ctrl-C stops sending, waits for the requests in flight and raises
        :class:`FleetInterrupted` (a ``KeyboardInterrupt``) carrying the result so far.
        """
        request = self._fleet_request(
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
        progress = _fleet._Progress(len(request[1]), ex_progress, self._to_node)
        outcomes, stopped = self._core.create_nodes(*request, progress)
        return _fleet._finish("ex_create_nodes", self._created(request[1], outcomes), stopped)

    def _fleet_request(
        self,
        names: Sequence[str],
        size: NodeSize,
        image: NodeImage | str,
        location: NodeLocation | str | Sequence[NodeLocation | str] | None,
        auth: NodeAuthSSHKey | NodeAuthPassword | None,
        ex_network: str | None,
        ex_context: Mapping[str, str] | None,
        ex_public_key_file: str | None,
        ex_disks_bus: str | None,
        ex_volatile_disk_gib: int | None,
        ex_client_tokens: Sequence[str] | None,
        ex_max_in_flight: int,
        ex_settle: float | None,
    ) -> tuple[list[str], list[str], list[str | None], _stratuslab._CreateArgs, int, float | None]:
        """``ex_create_nodes``' arguments, checked, as the core takes them."""
        names = _fleet._names(names)
        sites = [loc.id for loc in self._locations_of(location)]
        node_sites = [sites[i % len(sites)] for i in range(len(names))]
        tokens: list[str | None]
        if ex_client_tokens is None:
            tokens = [None] * len(names)
        else:
            tokens = [_fleet._token(t) for t in ex_client_tokens]
            if len(tokens) != len(names):
                raise ValueError("ex_client_tokens must give one token per name")
            if len(set(tokens)) != len(tokens):
                raise ValueError("ex_client_tokens must not repeat a token (one VM per token)")
        args = self._create_args(
            size,
            image,
            auth,
            ex_network,
            ex_context,
            ex_public_key_file,
            ex_disks_bus,
            ex_volatile_disk_gib,
        )
        return (
            node_sites,
            list(names),
            tokens,
            args,
            _count(ex_max_in_flight, "ex_max_in_flight"),
            _fleet._settle(ex_settle),
        )

    def _created(
        self,
        names: Sequence[str],
        outcomes: Sequence[tuple[tuple[Any, ...] | None, BaseException | None]],
    ) -> _fleet.FleetResult:
        result = _fleet.FleetResult()
        for name, (rec, exc) in zip(names, outcomes):
            if rec is not None:
                result.nodes.append(self._to_node(rec))
            elif exc is not None:
                result.failures.append((name, exc))
            else:
                result.not_sent.append(name)
        return result

    def ex_destroy_nodes(
        self,
        nodes: Sequence[Node | str],
        ex_max_in_flight: int = _stratuslab.DEFAULT_MAX_IN_FLIGHT,
        ex_progress: _fleet.Progress | None = None,
    ) -> _fleet.FleetResult:
        """Destroys the nodes concurrently, at most ``ex_max_in_flight`` requests in flight per
        site: one ``one.vm.action`` each. Returns a :class:`FleetResult` (``nodes``: those
        destroyed; ``failures``: ``(node id, exception)``). Progress and Ctrl-C as
        ``ex_create_nodes``."""
        ids, max_in_flight, as_nodes = self._destroy_request(nodes, ex_max_in_flight)
        progress = _fleet._Progress(len(as_nodes), ex_progress, lambda _: None, as_nodes)
        outcomes, stopped = self._core.destroy_nodes(ids, max_in_flight, progress)
        return _fleet._finish("ex_destroy_nodes", self._destroyed(as_nodes, outcomes), stopped)

    def _destroy_request(
        self, nodes: Sequence[Node | str], ex_max_in_flight: int
    ) -> tuple[list[tuple[str, int]], int, list[Node]]:
        """``ex_destroy_nodes``' arguments, checked, and the nodes as :class:`Node`."""
        given = list(nodes)
        ids = [self._site_of_node(n) for n in given]
        as_nodes = [n if isinstance(n, Node) else self._stub_node(n) for n in given]
        return ids, _count(ex_max_in_flight, "ex_max_in_flight"), as_nodes

    def _destroyed(
        self, as_nodes: Sequence[Node], outcomes: Sequence[tuple[bool | None, BaseException | None]]
    ) -> _fleet.FleetResult:
        result = _fleet.FleetResult()
        for node, (done, exc) in zip(as_nodes, outcomes):
            if done:
                result.nodes.append(node)
            elif exc is not None:
                result.failures.append((str(node.id), exc))
            else:
                result.not_sent.append(str(node.id))
        return result

    def _stub_node(self, node_id: str) -> Node:
        site, vm = self._site_of_node(node_id)
        return Node(
            id=node_id,
            name=node_id,
            state=NodeState.UNKNOWN,
            public_ips=[],
            private_ips=[],
            driver=self,
            extra={"location": site, "vm_id": vm},
        )

    def _locations_of(
        self, location: NodeLocation | str | Sequence[NodeLocation | str] | None
    ) -> list[NodeLocation]:
        if location is None or isinstance(location, (NodeLocation, str)):
            return [self._location(location)]
        locs = [self._location(loc) for loc in location]
        if not locs:
            raise ValueError("location must name at least one site")
        return locs

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

    @_names_driver
    def _action(self, node: Node | str, action: str) -> bool:
        site, vm = self._site_of_node(node)
        return self._acted(site, action, self._core.node_action(site, vm, action))

    def _acted(self, site: str, action: str, cleanup: BaseException | None) -> bool:
        if cleanup is not None:
            self._warn_failures(
                f"{action}_node", [(site, cleanup)], "could not release the node's volumes"
            )
        return True

    def destroy_node(self, node: Node) -> bool:
        """Deletes the VM at once (``finalize`` on OpenNebula 3.x), then removes the pdisk
        mounts the site left for it (a failure there is a :class:`StratusLabSiteWarning`)."""
        return self._action(node, "destroy")

    def reboot_node(self, node: Node) -> bool:
        """Reboots the VM (``reboot``, on every OpenNebula version)."""
        return self._action(node, "reboot")

    def stop_node(self, node: Node) -> bool:
        """Powers the VM off (``poweroff`` on OpenNebula ≥ 3.8, ``stop`` on 3.2)."""
        return self._action(node, "stop")

    def start_node(self, node: Node) -> bool:
        """Starts a stopped/powered-off/suspended VM again."""
        return self._action(node, "start")

    def ex_recover(self, node: Node | str, operation: str) -> bool:
        """Recovers a VM stuck between two states, or removes it, with ``one.vm.recover``
        (OpenNebula ≥ 4.2; ``finalize`` and ``resubmit`` became ``delete`` and
        ``delete-recreate`` in 5.x): ``operation`` is ``"failure"`` or ``"success"`` (the pending
        driver action failed or succeeded), ``"retry"`` (4.14+), ``"delete"``,
        ``"delete-recreate"`` (5.0+) or ``"delete-db"`` (5.8+). OpenNebula lets only users of
        its ``oneadmin`` group recover (:class:`StratusLabProviderError` otherwise); a VM in a
        state the operation does not apply to gives :class:`StratusLabStateError`, an
        operation the site's version lacks :class:`StratusLabUnsupportedError` (nothing sent),
        an unknown name ``ValueError``."""
        return self._action(node, self._recover_action(operation))

    @staticmethod
    def _recover_action(operation: str) -> str:
        """The core's action name of an ``ex_recover`` operation (whose name the core checks)."""
        if not isinstance(operation, str):
            raise TypeError(f"ex_recover: operation must be a str, not {type(operation).__name__}")
        return f"recover:{operation}"

    # ------------------------------------------------------------------ images

    @_names_driver
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

    @_names_driver
    def get_image(
        self,
        image_id: str,
        location: NodeLocation | str | None = None,
        ex_include_expired: bool = False,
    ) -> NodeImage:
        """One Marketplace image by its 27-character identifier (``ValueError`` otherwise): the
        valid entry, or with ``ex_include_expired`` any entry (expired or deprecated) when none
        is valid. None → :class:`StratusLabProviderError` with ``http_code`` 404. On a plain
        OpenNebula site, ``image-<n>@<site>`` or ``template-<n>@<site>``; without ``location``
        the site is the one the id names (so ``get_image(node.image.id)`` works)."""
        if location is None and isinstance(image_id, str):
            location = _opennebula.site_of_id(self, image_id)
        loc = self._location(location)
        if _opennebula.is_plain(self, loc.id):
            return _opennebula.get_image(self, loc.id, image_id)
        return self._to_image(self._core.get_image(loc.id, image_id, ex_include_expired))

    # ------------------------------------------------------------------ volumes

    @_names_driver
    def list_volumes(
        self,
        ex_location: NodeLocation | str | None = None,
        ex_strict: bool = False,
        ex_partial: bool = False,
    ) -> list[StorageVolume]:
        """The caller's pdisk volumes at every site (or the one named), queried concurrently;
        failed sites as in :meth:`list_nodes`."""
        site = None if ex_location is None else self._location(ex_location).id
        records, failures = self._core.list_volumes(site, ex_strict)
        plain, plain_failures = _opennebula.list_volumes(self, site, ex_strict)
        return self._listed_volumes(site, ex_partial, records, [*failures, *plain_failures], plain)

    def _listed_volumes(
        self,
        site: str | None,
        ex_partial: bool,
        records: list[_stratuslab._VolumeTuple],
        failures: _stratuslab._Failures,
        plain: Sequence[StorageVolume] = (),
    ) -> list[StorageVolume]:
        asked = 1 if site is not None else len(self._locations)
        self._site_failures("list_volumes", asked, failures, ex_partial)
        return [self._to_volume(r) for r in records] + list(plain)

    @_names_driver
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
        site, size, name, visibility = self._volume_request(
            size, name, location, snapshot, ex_visibility
        )
        if _opennebula.is_plain(self, site):
            return _opennebula.create_volume(self, site, size, name, ex_datastore)
        return self._to_volume(self._core.create_volume(site, size, name, visibility))

    def _volume_request(
        self,
        size: int,
        name: str,
        location: NodeLocation | str | None,
        snapshot: Any,
        ex_visibility: str,
    ) -> tuple[str, int, str, str]:
        """``create_volume``'s arguments, checked, as the core takes them."""
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
        return self._location(location).id, size, name, ex_visibility

    def _volume_site(self, volume: StorageVolume) -> str:
        if not isinstance(volume, StorageVolume):
            raise TypeError(f"volume must be a StorageVolume, not {type(volume).__name__}")
        site = (volume.extra or {}).get("location")
        if not site:
            raise ValueError(f"volume {volume.id!r} has no location in its extra")
        return str(self._location(site).id)

    @_names_driver
    def destroy_volume(self, volume: StorageVolume) -> bool:
        """Deletes the disk (refused by pdisk while it is attached)."""
        if _opennebula.is_plain(self, self._volume_site(volume)):
            return _opennebula.destroy_volume(self, self._volume_site(volume), volume)
        self._core.destroy_volume(self._volume_site(volume), volume.id)
        return True

    @_names_driver
    def attach_volume(self, node: Node, volume: StorageVolume, device: str | None = None) -> bool:
        """Hot-plugs the disk into a RUNNING node of the same site; pdisk picks the device,
        which is stored in ``volume.extra["device"]`` (a different ``device`` is reported)."""
        site, vm = self._attach_request(node, volume)
        if _opennebula.is_plain(self, site):
            return _opennebula.attach_volume(self, site, vm, volume, device)
        return self._attached(
            volume, site, vm, self._core.attach_volume(site, vm, volume.id), device
        )

    def _attach_request(self, node: Node, volume: StorageVolume) -> tuple[str, int]:
        site, vm = self._site_of_node(node)
        vsite = self._volume_site(volume)
        if vsite != site:
            raise ValueError(
                f"volume {volume.id} is at site {vsite!r} and node {node.id} at {site!r}"
            )
        return site, vm

    def _attached(
        self, volume: StorageVolume, site: str, vm: int, got: str, device: str | None
    ) -> bool:
        if device is not None and device.removeprefix("/dev/") != got.removeprefix("/dev/"):
            warnings.warn(
                f"pdisk chose device {got} for volume {volume.id}, not {device} "
                "(pdisk picks the device)",
                RuntimeWarning,
                stacklevel=3,
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

    @_names_driver
    def detach_volume(self, volume: StorageVolume) -> bool:
        """Hot-unplugs the disk from every VM of the caller it is mounted on, in any state, and
        removes mounts left by VMs that no longer exist."""
        site = self._volume_site(volume)
        if _opennebula.is_plain(self, site):
            return _opennebula.detach_volume(self, site, volume)
        return self._detached(volume, site, self._core.detach_volume(site, volume.id))

    def _detached(self, volume: StorageVolume, site: str, detached: list[tuple[int, str]]) -> bool:
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


def _endpoint(host: str, port: int | None, secure: bool) -> str:
    """The ``endpoint`` a ``host``/``port``/``secure`` triple means: a bare host with
    ``secure=False`` is plain HTTP (as in libcloud's drivers), on one-proxy's port by default."""
    if "/" in host:
        if not secure and host.lower().startswith("https://"):
            raise ValueError(f"secure=False contradicts the https URL {host!r}")
        return host
    address = f"{host}:{port}" if port is not None else host
    if secure:
        return address  # the bare-host rules: https (a bare localhost: a local daemon)
    if port is None and host in ("localhost", "127.0.0.1"):
        return f"http://{host}:2633/RPC2"  # the bare-host rule, its pdisk on http too
    return f"http://{address}" if ":" in address else f"http://{address}:2634"


def _check_proxy_url(proxy_url: str) -> str:
    """libcloud's rule for ``proxy_url``: ``http(s)://host:port`` (ValueError otherwise)."""
    if not isinstance(proxy_url, str):
        raise TypeError(f"proxy_url must be a str, not {type(proxy_url).__name__}")
    parts = urllib.parse.urlsplit(proxy_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https"):
        raise ValueError("Only http and https proxies are supported")
    if not parts.hostname or port is None:
        raise ValueError(
            "proxy_url must be in the following format: <scheme>://<proxy host>:<proxy port>"
        )
    return proxy_url


def _env_proxies(environ: Mapping[str, str]) -> dict[str, str | None]:
    """The proxies of the environment, as libcloud's drivers use them: ``https_proxy`` for https
    endpoints and ``http_proxy`` for http ones (lower case first, then upper case; the upper-case
    ``HTTP_PROXY`` is ignored under CGI), each standing in for the other when alone (libcloud
    sends everything through whichever is set), and ``no_proxy`` hosts reached directly."""

    def first(*names: str) -> str | None:
        return next((environ[n] for n in names if environ.get(n)), None)

    http = first("http_proxy") or (None if "REQUEST_METHOD" in environ else first("HTTP_PROXY"))
    https = first("https_proxy", "HTTPS_PROXY")
    no_proxy = first("no_proxy", "NO_PROXY")
    if no_proxy is not None and "*" in (entry.strip() for entry in no_proxy.split(",")):
        http = https = None  # every host, IP addresses included (the Rust matcher: names only)
    return {"proxy_https": https or http, "proxy_http": http or https, "no_proxy": no_proxy}


class _Connection:
    """The part of libcloud's ``driver.connection`` that scripts use with this driver: its
    proxy (``set_http_proxy``). Requests themselves are made by the Rust core."""

    def __init__(self, driver: StratusLabNodeDriver, proxy_url: str | None) -> None:
        self._driver = weakref.ref(driver)  # no cycle: a dropped driver is freed at once
        self.http_proxy_used = False
        self.proxy_scheme: str | None = None
        self.proxy_host: str | None = None
        self.proxy_port: int | None = None
        self.proxy_username: str | None = None
        self.proxy_url: str | None = None  # without its password, if it had one
        if proxy_url is not None:
            self._note(proxy_url)

    def _note(self, proxy_url: str) -> None:
        parts = urllib.parse.urlsplit(proxy_url)
        self.http_proxy_used = True
        self.proxy_scheme = parts.scheme
        self.proxy_host = parts.hostname
        self.proxy_port = parts.port
        self.proxy_username = parts.username  # the password is not kept
        netloc = parts.netloc.rpartition("@")[2]
        if parts.username is not None:
            netloc = f"{parts.username}@{netloc}"
        self.proxy_url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def set_http_proxy(self, proxy_url: str) -> None:
        """Sends every later request of the driver through this proxy
        (``http(s)://[user:password@]host:port``), as libcloud's connections do."""
        driver = self._driver()
        if driver is None:
            raise ReferenceError("the driver of this connection is gone")
        driver._core.set_proxy(proxy_all=_check_proxy_url(proxy_url))
        self._note(proxy_url)
        driver._remember_proxy(proxy_url)


def _config_path(config: ConfigSource | None, origin: str | None) -> str | None:
    """The absolute path of the configuration file read (given or the default one), None when
    there was none or it came as an open file."""
    if origin is None or not (config is None or isinstance(config, (str, os.PathLike))):
        return None
    return os.path.abspath(origin)


def _secret_source(secret: str | None, env: Mapping[str, str], config: Any) -> str | None:
    """Why a pickle of the driver cannot rebuild it (None: it can)."""
    if secret is not None:
        return "its password was given as an argument"
    if env.get("STRATUSLAB_PASSWORD") or env.get("STRATUSLAB_PDISK_PASSWORD"):
        return "its password came from the environment (STRATUSLAB_*PASSWORD)"
    if config is not None and not isinstance(config, (str, os.PathLike)):
        return "its configuration was given as an open file"
    return None


class _Unpickled:
    """The core of a driver unpickled without its password: every use raises."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def __getattr__(self, name: str) -> Any:
        raise StratusLabConfigError(
            f"this StratusLabNodeDriver was unpickled and {self._reason}: a pickle never holds "
            "a password, so it cannot reach its sites; build a new driver (a driver built from "
            "a configuration file pickles as the file's path and works once unpickled)"
        )


def _unpickle_driver(
    args: dict[str, Any],
    not_rebuildable: str | None,
    offline: tuple[
        list[tuple[str, int, int, int]], list[tuple[str, str, str, dict[str, Any]]], str | None
    ],
) -> StratusLabNodeDriver:
    if not_rebuildable is None:
        return StratusLabNodeDriver(**args)
    driver = StratusLabNodeDriver.__new__(StratusLabNodeDriver)
    sizes, locations, driver.key = offline
    driver.secret = None
    driver.secure = args["secure"]
    driver.host = args["host"]
    driver.port = args["port"]
    driver.region = None
    driver.api_version = None
    driver.timeout = args["timeout"]
    driver._core = _Unpickled(not_rebuildable)  # type: ignore[assignment]  # raises on use
    driver._sizes = [driver._to_size(s) for s in sizes]
    driver._locations = [
        NodeLocation(id=i, name=n, country=c, driver=driver, extra=extra)
        for (i, n, c, extra) in locations
    ]
    driver.connection = _Connection(driver, None)
    driver._pickled_args = dict(args)
    driver._not_rebuildable = not_rebuildable
    return driver


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
