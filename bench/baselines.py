"""Baselines of the benchmark suite: plain Python, written to be honest and efficient.

- floor: the libcloud objects built from already-parsed Python tuples (no I/O, no parsing): the
  cost no driver can avoid. The other baselines parse into the same tuples and call the same
  builders, so every contender returns the same objects as ``StratusLabNodeDriver``.
- etree: ``xmlrpc.client`` + ``xml.etree.ElementTree`` (the 2014 driver's stack).
- pyone: OpenNebula's official Python client (``vmpool.info``).
- fetch: the raw HTTP exchange of the same bytes with no parsing (keep-alive connection).
- raw asyncio: the same exchange on asyncio streams, many requests at once (``AsyncFetch``).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import http.client
import urllib.parse
import xml.etree.ElementTree as ET
import xmlrpc.client
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from libcloud.compute.base import Node, NodeImage, NodeSize
from libcloud.compute.types import NodeState

# ---------------------------------------------------------------------------------------------
# OpenNebula 3.x facts the driver also uses (src/one/states.rs), as lookup tables.

STATE_NAMES = (
    "INIT",
    "PENDING",
    "HOLD",
    "ACTIVE",
    "STOPPED",
    "SUSPENDED",
    "DONE",
    "FAILED",
    "POWEROFF",
)
LCM_NAMES = (
    "LCM_INIT",
    "PROLOG",
    "BOOT",
    "RUNNING",
    "MIGRATE",
    "SAVE_STOP",
    "SAVE_SUSPEND",
    "SAVE_MIGRATE",
    "PROLOG_MIGRATE",
    "PROLOG_RESUME",
    "EPILOG_STOP",
    "EPILOG",
    "SHUTDOWN",
    "CANCEL",
    "FAILURE",
    "CLEANUP",
    "UNKNOWN",
    "HOTPLUG",
    "SHUTDOWN_POWEROFF",
    "BOOT_UNKNOWN",
    "BOOT_POWEROFF",
    "BOOT_SUSPENDED",
    "BOOT_STOPPED",
)
STATE_LABELS = (
    "Init",
    "Pending",
    "Hold",
    "Active",
    "Stopped",
    "Suspended",
    "Done",
    "Failed",
    "Poweroff",
)
LCM_LABELS = (
    "Lcm_Init",
    "Prolog",
    "Boot",
    "Running",
    "Migrate",
    "Save_Stop",
    "Save_Suspend",
    "Save_Migrate",
    "Prolog_Migrate",
    "Prolog_Resume",
    "Epilog_Stop",
    "Epilog",
    "Shutdown",
    "Cancel",
    "Failure",
    "Delete",
    "Unknown",
    "Hotplug",
    "Shutdown_Poweroff",
    "Boot_Unknown",
    "Boot_Poweroff",
    "Boot_Suspended",
    "Boot_Stopped",
)
LCM_NODE_STATES = (
    "pending",
    "starting",
    "starting",
    "running",
    "migrating",
    "stopping",
    "stopping",
    "migrating",
    "migrating",
    "starting",
    "stopping",
    "stopping",
    "stopping",
    "stopping",
    "error",
    "stopping",
    "unknown",
    "reconfiguring",
    "stopping",
    "starting",
    "starting",
    "starting",
    "starting",
)
STATE_NODE_STATES = {0: "pending", 1: "pending", 2: "pending", 4: "stopped", 8: "stopped"}
STATE_NODE_STATES.update({5: "suspended", 6: "terminated", 7: "error"})
NODE_STATES = {s.value: s for s in NodeState}


def _at(table: Sequence[str], i: int) -> str | None:
    return table[i] if 0 <= i < len(table) else None


def node_state(state: int, lcm: int) -> str:
    if state == 3:
        return _at(LCM_NODE_STATES, lcm) or "unknown"
    return STATE_NODE_STATES.get(state, "unknown")


def summary(state: int, lcm: int) -> str:
    table, i = (LCM_LABELS, lcm) if state == 3 else (STATE_LABELS, state)
    return _at(table, i) or "Unknown"


def image_id_of_source(source: str) -> str:
    i = source.find("/metadata/")
    if i >= 0:
        return source[i + 10 :].split("/", 1)[0]
    if source.startswith("pdisk:"):
        return source.replace(":", "/").rsplit("/", 1)[-1]
    return source


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC paused while objects are built, as the driver does (a driver can avoid
    the collections; so the floor avoids them too, and so do the baselines that build with it)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# ---------------------------------------------------------------------------------------------
# The floor: libcloud objects from flat tuples that hold every value already computed.
#
# A node tuple: (node_id, name, NodeState, public_ips, private_ips, size, image_id, stime, site,
#                vm_id, extra_values, nics, error_message)
# with size = (name, cpu, ram_mib, swap_mib) or None, extra_values in EXTRA_KEYS order and
# nics = ((network, ip, mac), ...).

NodeTuple = tuple[Any, ...]
EXTRA_KEYS = (
    "host",
    "state",
    "state_name",
    "lcm_state",
    "lcm_state_name",
    "summary",
    "owner",
    "group",
    "deploy_id",
    "cpu",
    "vcpu",
    "memory_mib",
)


def build_nodes(driver: Any, tuples: Iterable[NodeTuple]) -> list[Node]:
    """The objects ``StratusLabNodeDriver.list_nodes`` returns, from ready values: construction
    only (the extra dicts, lists, NodeSize, NodeImage, datetime and Node)."""
    with gc_paused():
        return _build_nodes(driver, tuples)


def _build_nodes(driver: Any, tuples: Iterable[NodeTuple]) -> list[Node]:
    out = []
    append = out.append
    utc = timezone.utc
    fromtimestamp = datetime.fromtimestamp
    for t in tuples:
        nid, name, state, public, private, size, image_id, stime, site, vm_id, ev, nics, err = t
        host, st, st_name, lcm, lcm_name, summ, owner, group, deploy_id, cpu, vcpu, memory = ev
        extra = {
            "host": host,
            "state": st,
            "state_name": st_name,
            "lcm_state": lcm,
            "lcm_state_name": lcm_name,
            "summary": summ,
            "owner": owner,
            "group": group,
            "deploy_id": deploy_id,
            "cpu": cpu,
            "vcpu": vcpu,
            "memory_mib": memory,
            "nics": [{"network": n, "ip": i, "mac": m} for n, i, m in nics],
            "volumes": {},
        }
        if err is not None:
            extra["error_message"] = err
        extra["location"] = site
        extra["vm_id"] = vm_id
        node_size = None
        if size is not None:
            sname, scpu, ram, swap = size
            node_size = NodeSize(
                id=sname,
                name=sname,
                ram=ram,
                disk=-(-swap // 1024),
                bandwidth=None,
                price=None,
                driver=driver,
                extra={"cpu": scpu, "swap_mib": swap},
            )
        append(
            Node(
                id=nid,
                name=name,
                state=state,
                public_ips=list(public),
                private_ips=list(private),
                driver=driver,
                size=node_size,
                image=None
                if image_id is None
                else NodeImage(id=image_id, name=image_id, driver=driver),
                extra=extra,
                created_at=fromtimestamp(stime, tz=utc) if stime else None,
            )
        )
    return out


def node_tuples_from_nodes(nodes: Iterable[Node]) -> list[NodeTuple]:
    """The floor's input, taken from objects already built (so that it holds the same data)."""
    out = []
    for n in nodes:
        e = n.extra
        size = n.size
        out.append(
            (
                n.id,
                n.name,
                n.state,
                tuple(n.public_ips),
                tuple(n.private_ips),
                None
                if size is None
                else (size.id, size.extra["cpu"], size.ram, size.extra["swap_mib"]),
                None if n.image is None else n.image.id,
                int(n.created_at.timestamp()) if n.created_at else 0,
                e["location"],
                e["vm_id"],
                tuple(e[k] for k in EXTRA_KEYS),
                tuple((d["network"], d["ip"], d["mac"]) for d in e["nics"]),
                e.get("error_message"),
            )
        )
    return out


def node_tuple(
    *,
    site: str,
    vm_id: int,
    name: str,
    state: int,
    lcm: int,
    stime: int,
    owner: str,
    group: str,
    deploy_id: str,
    host: str | None,
    tcpu: float | None,
    vcpu: int | None,
    memory: int | None,
    size: tuple[str, int, int, int] | None,
    image_id: str | None,
    nics: tuple[tuple[str | None, str | None, str | None], ...],
    error: str | None,
) -> NodeTuple:
    """The floor tuple of one parsed VM: the driver's derived values (states, addresses)."""
    public, private = [], []
    for network, ip, _ in nics:
        if ip is not None:
            low = (network or "").lower()
            (private if low == "local" or "priv" in low else public).append(ip)
    extra = (
        host,
        state,
        _at(STATE_NAMES, state),
        lcm,
        _at(LCM_NAMES, lcm),
        summary(state, lcm),
        owner,
        group,
        deploy_id,
        tcpu,
        vcpu,
        memory,
    )
    return (
        f"{vm_id}@{site}",
        name,
        NODE_STATES.get(node_state(state, lcm), NodeState.UNKNOWN),
        public,
        private,
        size,
        image_id,
        stime,
        site,
        vm_id,
        extra,
        nics,
        error,
    )


class Sizes:
    """The driver's instance-type matching (cpu, ram and swap exactly, else a custom name)."""

    def __init__(self, sizes: Iterable[tuple[str, int, int, int]]) -> None:
        self.exact: dict[tuple[int, int, int], str] = {}
        for name, cpu, ram, swap in sizes:
            self.exact.setdefault((cpu, ram, swap), name)

    def size(
        self, tcpu: float | None, vcpu: int | None, ram: int | None, swap: int
    ) -> tuple[str, int, int, int] | None:
        if vcpu is not None:
            cpu = vcpu
        elif tcpu is not None and 0 < tcpu < 2**32:
            cpu = -int(-tcpu // 1)
        else:
            return None
        if ram is None:
            return None
        name = self.exact.get((cpu, ram, swap)) or f"custom-{cpu}cpu-{ram}mib-{swap}swap"
        return (name, cpu, ram, swap)


def _num(text: str | None, kind: type) -> Any:
    if text is None:
        return None
    try:
        return kind(text.strip())
    except ValueError:
        return None


def _text(el: ET.Element | None, path: str) -> str | None:
    if el is None:
        return None
    v = el.findtext(path)
    return v.strip() if v is not None and v.strip() else None


def node_tuples_from_etree(site: str, pool: ET.Element, sizes: Sizes) -> list[NodeTuple]:
    """One pass over a parsed ``VM_POOL`` document."""
    out = []
    for vm in pool.iterfind("VM"):
        tpl = vm.find("TEMPLATE")
        disks = [] if tpl is None else tpl.findall("DISK")
        swap = 0
        root = None
        for d in disks:
            if root is None and _text(d, "DISK_ID") == "0":
                root = d
            if (_text(d, "TYPE") or "").lower() == "swap" and swap == 0:
                swap = _num(_text(d, "SIZE"), int) or 0
        if root is None and disks:
            root = disks[0]
        image = _text(root, "IMAGE")
        source = _text(root, "SOURCE")
        if image is None and source is not None:
            image = image_id_of_source(source)
        tcpu = _num(_text(tpl, "CPU"), float)
        vcpu = _num(_text(tpl, "VCPU"), int)
        memory = _num(_text(tpl, "MEMORY"), int)
        nics = tuple(
            (_text(n, "NETWORK"), _text(n, "IP"), _text(n, "MAC"))
            for n in ([] if tpl is None else tpl.iterfind("NIC"))
        )
        hosts = vm.findall("HISTORY_RECORDS/HISTORY")
        host = None
        if hosts:
            best = max(enumerate(hosts), key=lambda ih: (int(ih[1].findtext("SEQ") or 0), ih[0]))
            host = _text(best[1], "HOSTNAME")
        state = int(vm.findtext("STATE") or 0)
        lcm = int(vm.findtext("LCM_STATE") or 0)
        out.append(
            node_tuple(
                site=site,
                vm_id=int(vm.findtext("ID") or 0),
                name=vm.findtext("NAME") or "",
                state=state,
                lcm=lcm,
                stime=int(vm.findtext("STIME") or 0),
                owner=vm.findtext("UNAME") or "",
                group=vm.findtext("GNAME") or "",
                deploy_id=vm.findtext("DEPLOY_ID") or "",
                host=host,
                tcpu=tcpu,
                vcpu=vcpu,
                memory=memory,
                size=sizes.size(tcpu, vcpu, memory, swap),
                image_id=image,
                nics=nics,
                error=_text(tpl, "ERROR/MESSAGE"),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# HTTP


class Endpoint:
    """A URL split for http.client, with HTTP Basic credentials."""

    def __init__(self, url: str, user: str | None = None, password: str | None = None) -> None:
        u = urllib.parse.urlsplit(url)
        self.url = url
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 80
        self.path = u.path + (f"?{u.query}" if u.query else "")
        self.headers: dict[str, str] = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        netloc = f"{user}:{password}@{u.netloc}" if user is not None else u.netloc
        self.url_with_credentials = urllib.parse.urlunsplit(u._replace(netloc=netloc))


class Fetch:
    """The raw exchange: one keep-alive connection, the body read whole, nothing parsed."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.conn = http.client.HTTPConnection(endpoint.host, endpoint.port)

    def request(self, method: str, body: bytes | None = None, accept: str | None = None) -> bytes:
        headers = dict(self.endpoint.headers)
        if body is not None:
            headers["Content-Type"] = "text/xml"
        if accept is not None:
            headers["Accept"] = accept
        self.conn.request(method, self.endpoint.path, body, headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} from {self.endpoint.url}: {data[:200]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


class AsyncFetch:
    """The raw exchange from asyncio: HTTP/1.1 keep-alive connections kept across calls (one
    request at a time each, as many at once as there are callers), the request bytes built once
    per call, the reply's body read whole by its Content-Length, nothing parsed."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.head = f"Host: {endpoint.host}:{endpoint.port}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in endpoint.headers.items()
        )

    async def request(
        self, method: str, body: bytes | None = None, accept: str | None = None
    ) -> bytes:
        ep = self.endpoint
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(ep.host, ep.port)
        head = f"{method} {ep.path} HTTP/1.1\r\n{self.head}"
        if accept is not None:
            head += f"Accept: {accept}\r\n"
        if body is not None:
            head += f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        headers = await reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = None
        for line in headers.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length is None:
            writer.close()
            raise RuntimeError(f"no Content-Length from {ep.url}: {headers[:200]!r}")
        data = await reader.readexactly(length)
        if status != 200:
            writer.close()
            raise RuntimeError(f"HTTP {status} from {ep.url}: {data[:200]!r}")
        self.idle.append((reader, writer))
        return data

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


def xmlrpc_body(method: str, *params: Any) -> bytes:
    return xmlrpc.client.dumps(params, method, encoding="UTF-8").encode()


# ---------------------------------------------------------------------------------------------
# etree and pyone list_nodes


def etree_list_nodes(
    proxy: xmlrpc.client.ServerProxy, session: str, site: str, sizes: Sizes, driver: Any
) -> list[Node]:
    """The 2014 stack: xmlrpc.client decodes the reply, ElementTree parses the pool."""
    ok, doc, code = proxy.one.vmpool.info(session, -3, -1, -1, -1)
    if not ok:
        raise RuntimeError(f"one.vmpool.info refused ({code}): {doc}")
    return build_nodes(driver, node_tuples_from_etree(site, ET.fromstring(doc), sizes))


def _pyone_get(obj: Any, key: str) -> Any:
    v = obj.get(key) if isinstance(obj, dict) else None
    return v.strip() if isinstance(v, str) and v.strip() else None


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def node_tuples_from_pyone(site: str, pool: Any, sizes: Sizes) -> list[NodeTuple]:
    """pyone's objects (generateDS bindings; TEMPLATE as dicts) into the same tuples."""
    out = []
    for vm in pool.VM:
        tpl = vm.TEMPLATE or {}
        disks = _as_list(tpl.get("DISK"))
        swap = 0
        root = None
        for d in disks:
            if root is None and _pyone_get(d, "DISK_ID") == "0":
                root = d
            if (_pyone_get(d, "TYPE") or "").lower() == "swap" and swap == 0:
                swap = _num(_pyone_get(d, "SIZE"), int) or 0
        if root is None and disks:
            root = disks[0]
        image = _pyone_get(root, "IMAGE")
        source = _pyone_get(root, "SOURCE")
        if image is None and source is not None:
            image = image_id_of_source(source)
        tcpu = _num(_pyone_get(tpl, "CPU"), float)
        vcpu = _num(_pyone_get(tpl, "VCPU"), int)
        memory = _num(_pyone_get(tpl, "MEMORY"), int)
        nics = tuple(
            (_pyone_get(n, "NETWORK"), _pyone_get(n, "IP"), _pyone_get(n, "MAC"))
            for n in _as_list(tpl.get("NIC"))
        )
        history = vm.HISTORY_RECORDS.HISTORY if vm.HISTORY_RECORDS is not None else []
        host = None
        if history:
            best = max(enumerate(history), key=lambda ih: (ih[1].SEQ or 0, ih[0]))
            host = best[1].HOSTNAME or None
        error = tpl.get("ERROR")
        out.append(
            node_tuple(
                site=site,
                vm_id=vm.ID,
                name=vm.NAME,
                state=vm.STATE,
                lcm=vm.LCM_STATE,
                stime=vm.STIME,
                owner=vm.UNAME,
                group=vm.GNAME,
                deploy_id=vm.DEPLOY_ID or "",
                host=host,
                tcpu=tcpu,
                vcpu=vcpu,
                memory=memory,
                size=sizes.size(tcpu, vcpu, memory, swap),
                image_id=image,
                nics=nics,
                error=_pyone_get(error, "MESSAGE") if isinstance(error, dict) else None,
            )
        )
    return out


def pyone_list_nodes(one: Any, site: str, sizes: Sizes, driver: Any) -> list[Node]:
    """pyone's vmpool.info (it decodes with xmlrpc.client and binds with generateDS/lxml)."""
    return build_nodes(driver, node_tuples_from_pyone(site, one.vmpool.info(-3, -1, -1, -1), sizes))


# ---------------------------------------------------------------------------------------------
# Images (Marketplace RDF/XML)

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dcterms": "http://purl.org/dc/terms/",
    "slterms": "http://mp.stratuslab.eu/slterms#",
    "slreq": "http://mp.stratuslab.eu/slreq#",
}
_DC = "{" + NS["dcterms"] + "}"
_SL = "{" + NS["slterms"] + "}"
_RQ = "{" + NS["slreq"] + "}"
_RDF = "{" + NS["rdf"] + "}"

# An image tuple: (identifier, name, extra-fields tuple in IMAGE_KEYS order)
IMAGE_KEYS = (
    "title",
    "tag",
    "description",
    "os",
    "os_version",
    "arch",
    "version",
    "endorser",
    "created",
    "valid_until",
    "deprecated",
    "format",
    "compression",
    "bytes",
    "checksums",
    "locations",
    "kind",
    "type",
    "hypervisor",
    "disks_bus",
    "inbound_ports",
    "outbound_ports",
    "publisher",
    "creator",
    "serial_number",
    "identifier_mismatch",
)


def build_images(driver: Any, tuples: Iterable[tuple[str, str, tuple[Any, ...]]]) -> list[Any]:
    """The objects ``StratusLabNodeDriver.list_images`` returns, from parsed tuples."""
    keys = IMAGE_KEYS
    with gc_paused():
        return [
            NodeImage(id=i, name=name, driver=driver, extra=dict(zip(keys, values, strict=True)))
            for i, name, values in tuples
        ]


def image_tuples_from_images(images: Iterable[NodeImage]) -> list[tuple[str, str, tuple[Any, ...]]]:
    return [(im.id, im.name, tuple(im.extra[k] for k in IMAGE_KEYS)) for im in images]


def _ports(text: str | None) -> list[int]:
    out = []
    for p in (text or "").replace(",", " ").split():
        if p.isdigit():
            out.append(int(p))
    return out


def image_tuples_from_etree(root: ET.Element, now: str) -> list[tuple[str, str, tuple[Any, ...]]]:
    """Every ``rdf:Description`` of a listing: fields, validity, newest per identifier."""
    best: dict[str, tuple[str, tuple[str, str, tuple[Any, ...]]]] = {}
    for d in root.iter(_RDF + "Description"):
        get = d.findtext
        ident = get(_DC + "identifier")
        if not ident:
            continue
        valid = get(_DC + "valid")
        deprecated = get(_SL + "deprecated")
        if (valid is not None and valid <= now) or deprecated is not None:
            continue
        endorsement = d.find(_RQ + "endorsement")
        created = endorsement.findtext(_DC + "created") if endorsement is not None else None
        endorser_el = endorsement.find(_RQ + "endorser") if endorsement is not None else None
        endorser = None
        if endorser_el is not None:
            endorser = {
                "email": endorser_el.findtext(_RQ + "email") or "",
                "subject": endorser_el.findtext(_RQ + "subject"),
                "issuer": endorser_el.findtext(_RQ + "issuer"),
            }
        checksums = {
            c.findtext(_RQ + "algorithm"): c.findtext(_RQ + "value")
            for c in d.iterfind(_RQ + "checksum")
        }
        title, tag, description = get(_DC + "title"), get(_SL + "tag"), get(_DC + "description")
        os_, ver, arch = get(_SL + "os"), get(_SL + "os-version"), get(_SL + "os-arch")
        first_line = next((s for s in (description or "").splitlines() if s.strip()), None)
        name = title or tag or (first_line.strip() if first_line else None) or ident
        size = get(_RQ + "bytes")
        serial = get(_SL + "serial-number")
        values = (
            title,
            tag,
            description,
            os_,
            ver,
            arch,
            get(_SL + "version"),
            endorser,
            created,
            valid,
            deprecated,
            get(_DC + "format"),
            get(_DC + "compression"),
            int(size) if size and size.isdigit() else None,
            checksums,
            [loc.text for loc in d.iterfind(_SL + "location") if loc.text],
            get(_SL + "kind"),
            get(_DC + "type"),
            get(_SL + "hypervisor"),
            get(_SL + "disks-bus"),
            [p for e in d.iterfind(_SL + "inbound-port") for p in _ports(e.text)],
            [p for e in d.iterfind(_SL + "outbound-port") for p in _ports(e.text)],
            get(_DC + "publisher"),
            get(_DC + "creator"),
            int(serial) if serial and serial.isdigit() else None,
            False,
        )
        key = created or ""
        old = best.get(ident)
        if old is None or key > old[0]:
            best[ident] = (key, (ident, name, values))
    return [v for _, v in best.values()]


def etree_list_images(fetch: Fetch, driver: Any, now: str) -> list[Any]:
    """http.client GET + ElementTree + the same selection and objects."""
    data = fetch.request("GET", accept="application/xml")
    return build_images(driver, image_tuples_from_etree(ET.fromstring(data), now))
