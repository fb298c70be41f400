"""A local StratusLab cloud: compute (OpenNebula XML-RPC behind one-proxy), pdisk and the
Marketplace, emulated in Rust and served on 127.0.0.1.

As a test fixture::

    from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver

    with LocalCloud(sites=["lal", "grnet"]) as cloud:
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
        print(driver.list_locations())

From the command line: ``python -m stratuslab_libcloud.localcloud --sites lal,grnet``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from libcloud.common.types import LibcloudError

from . import _stratuslab

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_USER", "LocalCloud", "client_urls", "main", "parser"]

DEFAULT_USER = "alice"
DEFAULT_PASSWORD = "alice-local-password"


class LocalCloud:
    """An in-process StratusLab cloud with one or more sites, on an ephemeral port by default.

    :param sites: site names (one configuration section each).
    :param users: user name → password accepted at every site.
    :param version: OpenNebula version knob: ``"3.2"``, ``"3.8"`` (default), ``"4.x"``, ``"5.x"``,
        ``"7.4"``.
    :param site_type: ``"stratuslab"`` (default: one-proxy, pdisk, Marketplace) or
        ``"opennebula"`` (a plain daemon at ``/<site>/RPC2`` with image, template and vnet pools;
        its configuration section says ``site_type = opennebula``).
    :param site_options: per-site ``{"version": ..., "site_type": ...}`` overriding the two
        above, so that one local cloud mixes kinds and versions.
    :param boot_step: seconds per lifecycle step (PENDING → PROLOG → BOOT → RUNNING).
    :param latency: seconds added to every reply.
    :param tls: serve HTTPS with a CA generated at start (``ca_file``).
    :param port: TCP port (0 = ephemeral).
    :param public_network: first address and size of the ``public`` network, e.g.
        ``("127.0.0.2", 200)`` to lease loopback addresses.
    :param marketplace: seed the Marketplace with the default (synthetic) catalog.
    """

    def __init__(
        self,
        sites: Sequence[str] = ("lal",),
        *,
        users: dict[str, str] | None = None,
        version: str = "3.8",
        boot_step: float = 0.05,
        latency: float = 0.0,
        tls: bool = False,
        port: int = 0,
        public_network: tuple[str, int] | None = None,
        marketplace: bool = True,
        site_type: str = "stratuslab",
        site_options: dict[str, dict[str, str]] | None = None,
    ) -> None:
        if isinstance(sites, str):
            sites = [s for s in sites.split(",") if s]
        self.sites = list(sites)
        self.users = dict(users) if users is not None else {DEFAULT_USER: DEFAULT_PASSWORD}
        for user, password in self.users.items():
            _check_verbatim("user name", user)
            _check_verbatim(f"password of {user!r}", password)
        self._options: dict[str, Any] = {
            "sites": self.sites,
            "users": list(self.users.items()),
            "version": version,
            "boot_step": boot_step,
            "latency": latency,
            "tls": tls,
            "port": port,
            "public_network": public_network,
            "marketplace": marketplace,
            "site_type": site_type,
            "site_options": [
                (site, opts.get("version"), opts.get("site_type"))
                for site, opts in (site_options or {}).items()
            ],
        }
        self._server: Any = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._config_file: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalCloud:
        """Starts serving; returns self."""
        if self._server is not None:
            return self
        self._server = _stratuslab.LocalCloudServer(**self._options)
        self._tmp = tempfile.TemporaryDirectory(prefix="stratuslab-localcloud-")
        path = Path(self._tmp.name) / "stratuslab-user.cfg"
        path.write_text(self.config_text, encoding="utf-8")
        os.chmod(path, 0o600)
        self._config_file = str(path)
        return self

    def stop(self) -> None:
        """Stops serving and frees the port. State is lost."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._config_file = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port {self.port}" if self._server is not None else "stopped"
        return f"<LocalCloud sites={self.sites!r} {state}>"

    @property
    def server(self) -> Any:
        if self._server is None:
            raise RuntimeError("the local cloud is not running (use start() or a with block)")
        return self._server

    # ------------------------------------------------------------------ facts

    @property
    def config_file(self) -> str:
        """Path of a ``stratuslab-user.cfg`` for this cloud (see ``config_text``), written at
        start and removed at stop (``RuntimeError`` when the cloud is not running)."""
        if self._config_file is None:
            raise RuntimeError("the local cloud is not running (use start() or a with block)")
        return self._config_file

    @property
    def port(self) -> int:
        return int(self.server.port())

    @property
    def base_url(self) -> str:
        return str(self.server.base_url())

    @property
    def config_text(self) -> str:
        """A ``stratuslab-user.cfg`` with one section per site and the first user's credentials."""
        return str(self.server.config_text())

    @property
    def ca_file(self) -> str | None:
        """PEM file of the generated CA (TLS only)."""
        ca = self.server.ca_file()
        return None if ca is None else str(ca)

    def endpoints(self, site: str) -> dict[str, str]:
        """``compute``, ``rpc2``, ``pdisk`` and ``marketplace`` URLs of a site."""
        return dict(self.server.endpoints(site))

    def issue_client_cert(self, user: str) -> tuple[str, str]:
        """A client certificate and key (PEM paths) signed by the generated CA (TLS only)."""
        cert, key = self.server.issue_client_cert(user)
        return str(cert), str(key)

    # ------------------------------------------------------------------ state

    def seed(
        self,
        site: str | None = None,
        *,
        vms: int = 0,
        volumes: int = 0,
        images: int = 0,
        owner: str | None = None,
    ) -> None:
        """Adds ``vms`` running VMs and ``volumes`` disks at a site (default: the first) owned by
        ``owner`` (default: the first user), and ``images`` synthetic Marketplace entries."""
        site = self._known_site(site or self.sites[0])
        owner = owner or next(iter(self.users))
        if vms:
            self.server.seed_vms(site, vms, owner)
        if volumes:
            self.server.seed_volumes(site, volumes, owner)
        if images:
            self.server.seed_images(images)

    def load_marketplace_file(self, path: str | os.PathLike[str]) -> str:
        """Loads a real Marketplace entry (RDF/XML); returns its identifier."""
        return str(self.server.load_marketplace_document(Path(path).read_text(encoding="utf-8")))

    def set_clock(self, unix_time: float | None) -> None:
        """Fixes the Marketplace's notion of now (``None`` = the real clock)."""
        self.server.set_clock(None if unix_time is None else int(unix_time))

    def vm_ids(self, site: str) -> list[int]:
        return list(self.server.vm_ids(site))

    def vm_state(self, site: str, vm_id: int) -> tuple[int, int] | None:
        state = self.server.vm_state(site, vm_id)
        return None if state is None else (int(state[0]), int(state[1]))

    def vm_template(self, site: str, vm_id: int) -> str | None:
        """The template text the VM was allocated with, as received."""
        t = self.server.vm_template(site, vm_id)
        return None if t is None else str(t)

    def fail_vm(
        self, site: str, vm_id: int, message: str = "Error executing image transfer script"
    ) -> None:
        """Makes a VM FAILED (STATE 7, ``TEMPLATE/ERROR/MESSAGE`` = ``message``), as when its
        prolog or boot fails on the host."""
        if not self.server.fail_vm(site, vm_id, message):
            raise ValueError(f"site {site!r} has no live VM {vm_id}")

    def disks(self, site: str) -> list[dict[str, Any]]:
        """Every pdisk disk of a site with its mounts."""
        return list(self.server.disks(site))

    # ------------------------------------------------------------------ faults

    def inject_fault(
        self,
        kind: str,
        *,
        site: str | None = None,
        service: str = "any",
        op: str | None = None,
        status: int | None = None,
        seconds: float | None = None,
        code: int | None = None,
        message: str | None = None,
        size: int | None = None,
        times: int | None = None,
    ) -> None:
        """Makes matching requests fail.

        ``kind``: ``status`` (HTTP ``status``), ``malformed``, ``truncated``, ``drop``,
        ``reset``, ``slow`` (``seconds``), ``one_error`` (``code``, ``message``), ``fault``
        (XML-RPC ``code``, ``message``), ``content_type``, ``huge`` (``size`` bytes).
        Lost replies after the request was carried out: ``status_after`` (the call is carried
        out, then HTTP ``status`` is answered), ``drop_after`` (carried out, then the connection
        is closed without a reply), and ``reset``/``truncated`` (which act too); before it:
        ``drop`` and ``status``. ``late`` (``seconds``): the call is carried out only after that
        delay, even if the client has given up waiting (a request still in flight).
        ``service``: ``compute``, ``pdisk``, ``marketplace`` or ``any``; ``op``: an XML-RPC
        method name or a REST ``"GET /disks"``-style operation; ``times``: how many requests.
        """
        if site is not None:
            self._known_site(site)
        self.server.inject_fault(
            kind, site, service, op, status, seconds, code, message, size, times
        )

    def clear_faults(self) -> None:
        self.server.clear_faults()

    def request_count(self, site: str | None, service: str, op: str | None = None) -> int:
        """Requests received so far for (site, service, op); every operation when ``op`` is
        ``None`` (or ``"*"``). The Marketplace's site is ``None``."""
        return int(self.server.request_count(site, service, op))

    def dropped_count(self) -> int:
        """Requests whose handling was dropped before the reply because the client closed the
        connection (a cancelled call)."""
        return int(self.server.dropped_count())

    def _known_site(self, site: str) -> str:
        if site not in self.sites:
            raise ValueError(f"unknown site {site!r} (sites: {', '.join(self.sites)})")
        return site


def _check_verbatim(what: str, value: str) -> None:
    """A value the configuration file can hold as written (RawConfigParser keeps every character
    but strips surrounding white space and ends a value at a line break)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty str")
    if value != value.strip() or any(c in value for c in "\r\n"):
        raise ValueError(
            f"{what} cannot start or end with white space or hold a line break: a "
            "configuration file cannot keep it as written"
        )


def client_urls(cloud: LocalCloud, site: str) -> dict[str, str]:
    """The URLs a client sends its requests to, as they are (``endpoints`` gives the bases a
    configuration file takes, to which the driver adds the password-mode parts itself)."""
    e = cloud.endpoints(site)
    proxy, _, last = e["compute"].rpartition("/")
    return {
        "compute": f"{proxy}/pswd/{last}",
        "rpc2": e["rpc2"],
        "pdisk": f"{e['pdisk']}/pswd/disks/",
        "marketplace": f"{e['marketplace']}/metadata",
    }


_WHAT = {
    "compute": "one-proxy XML-RPC, HTTP basic authentication",
    "rpc2": "the OpenNebula daemon's XML-RPC, session 'user:password'",
    "pdisk": "REST, HTTP basic authentication",
    "marketplace": "RDF/XML, or JSON with ?media=json",
}


def _print_endpoints(cloud: LocalCloud, out: Any, *, plain: bool = False) -> None:
    print(f"StratusLab local cloud on {cloud.base_url}", file=out)
    for site in cloud.sites:
        for service, url in client_urls(cloud, site).items():
            if plain and service != "rpc2":
                # A plain OpenNebula site is the daemon alone.
                continue
            print(f"  {site:<12} {service:<12} {url}  ({_WHAT[service]})", file=out)
    user, password = next(iter(cloud.users.items()))
    print(f"  user {user!r}, password {password!r}", file=out)
    if cloud.ca_file:
        print(f"  CA certificate: {cloud.ca_file}", file=out)


def _count(text: str, limit: int = 2**31 - 1) -> int:
    """An argparse type: a whole number from 0 to ``limit``."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= limit:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to {limit}")
    return value


def _port(text: str) -> int:
    return _count(text, 65535)


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m stratuslab_libcloud.localcloud``."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="python -m stratuslab_libcloud.localcloud",
        description="Run a local StratusLab cloud (compute, pdisk, Marketplace) on 127.0.0.1, "
        "print the URLs of its services and serve until Ctrl-C.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"stratuslab-libcloud {__version__}",
        help="print the package version and exit",
    )
    parser.add_argument(
        "--port", type=_port, default=0, help="TCP port (default: %(default)s, an ephemeral port)"
    )
    parser.add_argument(
        "--sites",
        default="lal",
        help="comma-separated site names: letters, digits, '-' or '_' (default: %(default)s)",
    )
    parser.add_argument(
        "--opennebula-version",
        default="3.8",
        choices=["3.2", "3.8", "4.x", "5.x", "7.4"],
        help="the OpenNebula version whose replies are emulated (default: %(default)s)",
    )
    parser.add_argument(
        "--site-type",
        default="stratuslab",
        choices=["stratuslab", "opennebula"],
        help="stratuslab: one-proxy, pdisk and Marketplace; opennebula: a plain daemon at "
        "/<site>/RPC2 with image, template and vnet pools (default: %(default)s)",
    )
    parser.add_argument(
        "--boot-step",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="time of each boot step, PENDING to RUNNING (default: %(default)s)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a CA generated at start (default: plain HTTP)",
    )
    parser.add_argument(
        "--write-config",
        metavar="PATH",
        help="write a stratuslab-user.cfg for these sites, mode 600 (default: none written)",
    )
    parser.add_argument(
        "--seed-vms",
        type=_count,
        default=0,
        metavar="N",
        help="VMs created at every site at start (default: %(default)s)",
    )
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m stratuslab_libcloud.localcloud``: serve until Ctrl-C."""
    cli = parser()
    args = cli.parse_args(list(argv) if argv is not None else None)
    if threading.current_thread() is threading.main_thread():
        # "Serve until Ctrl-C" must hold even when started in the background by a shell without
        # job control, which starts it with SIGINT ignored (Python then installs no handler).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    sites = [s.strip() for s in args.sites.split(",") if s.strip()]
    cloud = LocalCloud(
        sites,
        version=args.opennebula_version,
        site_type=args.site_type,
        boot_step=args.boot_step,
        tls=args.tls,
        port=args.port,
    )
    try:
        cloud.start()
    except (ValueError, LibcloudError) as err:
        # A bad site name, a busy port: say so without a traceback (exit status 2).
        cli.error(str(err))
    except KeyboardInterrupt:
        return 0
    try:
        with cloud:
            if args.seed_vms:
                for site in sites:
                    cloud.seed(site, vms=args.seed_vms)
            if args.write_config:
                Path(args.write_config).write_text(cloud.config_text, encoding="utf-8")
                os.chmod(args.write_config, 0o600)
                print(f"configuration written to {args.write_config}")
            _print_endpoints(cloud, sys.stdout, plain=args.site_type == "opennebula")
            print("serving; press Ctrl-C to stop", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
