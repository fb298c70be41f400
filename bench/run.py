"""Benchmarks of stratuslab-libcloud against plain-Python alternatives; prints one table.

    python bench/run.py            # the full suite (make bench)
    python bench/run.py --quick    # a small smoke version (make bench-quick, CI)
    python bench/run.py --only P1,P4 --repeats 7 --markdown bench/RESULTS.table.md

Every figure is a ratio against a baseline measured in the same run: contenders run interleaved
(the order rotates each repetition), each repetition gives one paired ratio, and the table shows
the median (and the min..max) of those. Times are wall-clock (time.perf_counter) with the
garbage collector left on, after a gc.collect(), and each run ends with a young collection
(`gc.collect(0)`, see `interleaved`). Measure an optimized build of the extension:
`maturin develop --profile profiling` (the release build with line tables, for perf; shipped
wheels have no debug info) or `--release`. Baselines are in bench/baselines.py.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import baselines as bl  # noqa: E402
import pyone  # noqa: E402
from libcloud.compute.base import NodeAuthSSHKey  # noqa: E402

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver  # noqa: E402

USER, PASSWORD = "alice", "alice-local-password"
X = "\u00d7"  # the multiplication sign of ratios
SESSION = f"{USER}:{PASSWORD}"
SSH_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 bench@localcloud.example.org"


# ---------------------------------------------------------------------------------------------
# Measuring


def interleaved(
    contenders: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Runs every contender once per repetition, rotating the order; seconds per run.

    Each run ends with a young-generation collection (``gc.collect(0)``) inside its time: a
    contender that builds objects with the cyclic GC paused (the driver, the floor) leaves
    them in the young generation, and the first container allocated after the pause pays one
    pass over all of them (≈ 20 ms for 10,000 nodes). The driver allocates its result tuple
    after re-enabling the GC, so it paid that pass inside its time while the floor, returning
    at once, paid it outside (in the next ``gc.collect()``): the pass now counts for both."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            result = contenders[name]()
            del result
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            t0 = time.perf_counter()
            result = contenders[name]()
            gc.collect(0)
            t1 = time.perf_counter()
            del result
            times[name].append(t1 - t0)
    return times


@dataclass
class Row:
    workload: str
    label: str
    values: list[float]
    unit: str = "ms"
    target: str = ""
    ok: bool | None = None
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def time(self, workload: str, label: str, seconds: list[float], note: str = "") -> None:
        self.rows.append(Row(workload, label, [s * 1000 for s in seconds], "ms", note=note))

    def quantity(self, workload: str, label: str, values: list[float], unit: str) -> None:
        self.rows.append(Row(workload, label, values, unit))

    def check(
        self,
        workload: str,
        label: str,
        ratios: list[float],
        *,
        op: str,
        limit: float,
        note: str = "",
    ) -> None:
        med = statistics.median(ratios)
        ok = med <= limit if op == "<=" else med >= limit
        sign = "≤" if op == "<=" else "≥"
        self.rows.append(Row(workload, label, ratios, X, f"{sign} {limit:g}{X}", ok, note))

    def table(self) -> str:
        head = ["", "measurement", "median", "min", "max", "target", "result"]
        lines = [head]
        for r in self.rows:
            fmt = _fmt_ratio if r.unit == X else (lambda v, u=r.unit: _fmt(v, u))
            result = "" if r.ok is None else ("PASS" if r.ok else "FAIL")
            label = r.label + (f" ({r.note})" if r.note else "")
            lines.append(
                [
                    r.workload,
                    label,
                    fmt(statistics.median(r.values)),
                    fmt(min(r.values)),
                    fmt(max(r.values)),
                    r.target,
                    result,
                ]
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        right = {2, 3, 4}

        def render(cells: list[str]) -> str:
            parts = [
                c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                for i, c in enumerate(cells)
            ]
            return "| " + " | ".join(parts) + " |"

        sep = (
            "|"
            + "|".join(
                ("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)
            )
            + "|"
        )
        return "\n".join([render(lines[0]), sep, *(render(line) for line in lines[1:])])

    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.ok is False]


def _fmt(v: float, unit: str) -> str:
    if unit == "ms":
        return f"{v:,.1f} ms" if v < 100 else f"{v:,.0f} ms"
    if unit == "MB":
        return f"{v:,.1f} MB"
    if unit == "threads":
        return f"{v:,.0f}"
    return f"{v:,.2f} {unit}"


def _fmt_ratio(v: float) -> str:
    return f"{v:,.2f}{X}" if v < 100 else f"{v:,.0f}{X}"


def paired(num: list[float], den: list[float]) -> list[float]:
    return [a / b for a, b in zip(num, den, strict=True)]


def summed(*series: list[float]) -> list[float]:
    return [sum(vals) for vals in zip(*series, strict=True)]


# ---------------------------------------------------------------------------------------------
# The local cloud and the driver


@contextmanager
def local_cloud(sites: Sequence[str], **options: Any) -> Iterator[Any]:
    cloud = LocalCloud(sites=list(sites), **options)
    with cloud:
        yield cloud


def make_driver(cloud: Any) -> Any:
    return StratusLabNodeDriver(ex_config_file=cloud.config_file)


def pswd_url(cloud: Any, site: str) -> str:
    """The one-proxy password endpoint the driver derives from the configured one."""
    url = str(cloud.endpoints(site)["compute"])
    head, _, last = url.rpartition("/")
    return f"{head}/pswd/{last}"


def proxy_for(cloud: Any, site: str) -> xmlrpc.client.ServerProxy:
    ep = bl.Endpoint(pswd_url(cloud, site), USER, PASSWORD)
    return xmlrpc.client.ServerProxy(ep.url_with_credentials)


def same_nodes(a: Sequence[Any], b: Sequence[Any]) -> str | None:
    """None when two node lists are equal object for object (driver aside)."""
    if len(a) != len(b):
        return f"{len(a)} nodes against {len(b)}"

    def plain(n: Any) -> tuple[Any, ...]:
        size = None if n.size is None else (n.size.id, n.size.ram, n.size.disk, n.size.extra)
        image = None if n.image is None else (n.image.id, n.image.name, n.image.extra)
        return (
            n.id,
            n.name,
            n.state,
            n.public_ips,
            n.private_ips,
            size,
            image,
            n.extra,
            n.created_at,
        )

    for x, y in zip(a, b, strict=True):
        if plain(x) != plain(y):
            return f"first difference:\n  {plain(x)}\n  {plain(y)}"
    return None


def same_images(a: Sequence[Any], b: Sequence[Any]) -> str | None:
    key = sorted((i.id, i.name, sorted(i.extra.items(), key=str)) for i in a)
    other = sorted((i.id, i.name, sorted(i.extra.items(), key=str)) for i in b)
    if len(key) != len(other):
        return f"{len(key)} images against {len(other)}"
    for x, y in zip(key, other, strict=True):
        if x != y:
            return f"first difference:\n  {x}\n  {y}"
    return None


def require(problem: str | None, what: str) -> None:
    if problem is not None:
        raise SystemExit(f"baseline {what} does not build the driver's objects: {problem}")


# ---------------------------------------------------------------------------------------------
# P1 and P4: list_nodes at one site with many VMs


def p1(report: Report, cloud: Any, vms: int, repeats: int, slow_repeats: int) -> None:
    driver = make_driver(cloud)
    site = cloud.sites[0]
    sizes = bl.Sizes(
        (s.id, s.extra["cpu"], s.ram, s.extra["swap_mib"]) for s in driver.list_sizes()
    )
    reference = driver.list_nodes()
    tuples = bl.node_tuples_from_nodes(reference)
    fetch = bl.Fetch(bl.Endpoint(pswd_url(cloud, site), USER, PASSWORD))
    body = bl.xmlrpc_body("one.vmpool.info", SESSION, -3, -1, -1, -1)
    size = len(fetch.request("POST", body))
    proxy = proxy_for(cloud, site)
    one = pyone.OneServer(cloud.endpoints(site)["rpc2"], session=SESSION)

    require(same_nodes(reference, bl.build_nodes(driver, tuples)), "floor")
    require(
        same_nodes(reference, bl.etree_list_nodes(proxy, SESSION, site, sizes, driver)), "etree"
    )
    require(same_nodes(reference, bl.pyone_list_nodes(one, site, sizes, driver)), "pyone")
    del reference

    fast = interleaved(
        {
            "ours": driver.list_nodes,
            "floor": lambda: bl.build_nodes(driver, tuples),
            "fetch": lambda: fetch.request("POST", body),
        },
        repeats,
    )
    slow = interleaved(
        {
            "ours": driver.list_nodes,
            "etree": lambda: bl.etree_list_nodes(proxy, SESSION, site, sizes, driver),
            "pyone": lambda: bl.pyone_list_nodes(one, site, sizes, driver),
        },
        slow_repeats,
        warmup=0,
    )
    fetch.close()
    w = "P1"
    what = f"{vms:,} VMs, {size / 1e6:.1f} MB reply"
    report.time(w, "driver.list_nodes()", fast["ours"], what)
    report.time(w, "floor: objects from tuples", fast["floor"])
    report.time(w, "fetch: raw HTTP, no parsing", fast["fetch"])
    report.time(w, "etree: xmlrpc.client + ElementTree", slow["etree"])
    report.time(w, "pyone: vmpool.info", slow["pyone"])
    report.check(
        w,
        "driver / (floor + fetch)",
        paired(fast["ours"], summed(fast["floor"], fast["fetch"])),
        op="<=",
        limit=1.5,
    )
    report.check(w, "etree / driver", paired(slow["etree"], slow["ours"]), op=">=", limit=10)
    report.check(w, "pyone / driver", paired(slow["pyone"], slow["ours"]), op=">=", limit=20)


def p1_seven(report: Report, vms: int, repeats: int) -> None:
    """P1 on a plain OpenNebula 7.4 site (``site_type = opennebula``, direct ``/RPC2``): the
    driver lists over ``one.vmpool.info``'s short body, which carries what a node needs (CPU,
    MEMORY, VCPU, DISK, NIC, history); the full ``vmpool.infoextended`` body is fetched too, to
    show what the short one saves. Same target as P1: at most 1.5 times (floor + fetch)."""
    with local_cloud(["one"], version="7.4", site_type="opennebula") as cloud:
        cloud.seed(vms=vms)
        driver = make_driver(cloud)
        reference = driver.list_nodes()
        require(None if len(reference) == vms else f"{len(reference)} nodes", "7.x listing")
        tuples = bl.node_tuples_from_nodes(reference)
        require(same_nodes(reference, bl.build_nodes(driver, tuples)), "7.x floor")
        del reference
        fetch = bl.Fetch(bl.Endpoint(cloud.endpoints("one")["rpc2"]))
        short = bl.xmlrpc_body("one.vmpool.info", SESSION, -3, -1, -1, -1)
        extended = bl.xmlrpc_body("one.vmpool.infoextended", SESSION, -3, -1, -1, -1)
        sizes = (len(fetch.request("POST", short)), len(fetch.request("POST", extended)))
        runs = interleaved(
            {
                "ours": driver.list_nodes,
                "floor": lambda: bl.build_nodes(driver, tuples),
                "fetch": lambda: fetch.request("POST", short),
                "fetch-ext": lambda: fetch.request("POST", extended),
            },
            repeats,
        )
        fetch.close()
    w = "P1-7x"
    what = f"{vms:,} VMs, {sizes[0] / 1e6:.1f} MB short / {sizes[1] / 1e6:.1f} MB extended"
    report.time(w, "driver.list_nodes() (7.4, vmpool.info)", runs["ours"], what)
    report.time(w, "floor: objects from tuples", runs["floor"])
    report.time(w, "fetch: vmpool.info, raw", runs["fetch"])
    report.time(w, "fetch: vmpool.infoextended, raw", runs["fetch-ext"])
    report.check(
        w,
        "driver / (floor + fetch)",
        paired(runs["ours"], summed(runs["floor"], runs["fetch"])),
        op="<=",
        limit=1.5,
    )


def p4(report: Report, cloud: Any, repeats: int) -> None:
    """Peak RSS of list_nodes in a fresh process against a process that holds the same fetched
    bytes and the floor's objects (the local cloud stays in this process)."""
    driver = make_driver(cloud)
    tuples = bl.node_tuples_from_nodes(driver.list_nodes())
    with tempfile.TemporaryDirectory(prefix="stratuslab-bench-") as tmp:
        stream = Path(tmp) / "tuples.pickle"
        with stream.open("wb") as f:
            for t in tuples:
                pickle.dump(t, f, protocol=pickle.HIGHEST_PROTOCOL)
        del tuples
        url = pswd_url(cloud, cloud.sites[0])
        commands = {
            "ours": [sys.executable, __file__, "--child", "rss-driver", cloud.config_file],
            "floor": [sys.executable, __file__, "--child", "rss-floor", url, str(stream)],
        }
        peaks: dict[str, list[float]] = {"ours": [], "floor": []}
        counts: dict[str, set[str]] = {"ours": set(), "floor": set()}
        for r in range(repeats):
            for name in ["ours", "floor"] if r % 2 == 0 else ["floor", "ours"]:
                out = subprocess.run(commands[name], capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    raise SystemExit(f"P4 child {name} failed:\n{out.stderr}")
                peak_kib, n = out.stdout.split()
                peaks[name].append(int(peak_kib) / 1024)
                counts[name].add(n)
    if counts["ours"] != counts["floor"]:
        raise SystemExit(f"P4: children disagree on the node count: {counts}")
    report.quantity("P4", "peak RSS, driver.list_nodes() process", peaks["ours"], "MB")
    report.quantity("P4", "peak RSS, fetched bytes + floor objects", peaks["floor"], "MB")
    report.check(
        "P4", "driver / (bytes + floor)", paired(peaks["ours"], peaks["floor"]), op="<=", limit=1.5
    )


def child_rss_driver(config_file: str) -> None:
    driver = StratusLabNodeDriver(ex_config_file=config_file)
    nodes = driver.list_nodes()
    print(_peak_kib(), len(nodes))


class _Driver:
    type = "stratuslab"


def child_rss_floor(url: str, stream: str) -> None:
    ep = bl.Endpoint(url, USER, PASSWORD)
    data = bl.Fetch(ep).request("POST", bl.xmlrpc_body("one.vmpool.info", SESSION, -3, -1, -1, -1))

    def tuples() -> Iterator[bl.NodeTuple]:
        with open(stream, "rb") as f:
            while True:
                try:
                    yield pickle.load(f)
                except EOFError:
                    return

    nodes = bl.build_nodes(_Driver(), tuples())
    print(_peak_kib(), len(nodes))
    del data


def _peak_kib() -> int:
    """VmHWM: the peak RSS of this process image (ru_maxrss would carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM in /proc/self/status")


# ---------------------------------------------------------------------------------------------
# P2: list_images with many Marketplace entries


def p2(report: Report, images: int, repeats: int) -> None:
    with local_cloud(["lal"]) as cloud:
        cloud.seed(images=images)
        driver = make_driver(cloud)
        reference = driver.list_images()
        tuples = bl.image_tuples_from_images(reference)
        mp = cloud.endpoints("lal")["marketplace"]
        fetch = bl.Fetch(bl.Endpoint(f"{mp}/metadata?status=valid"))
        size = len(fetch.request("GET", accept="application/xml"))
        etree_fetch = bl.Fetch(bl.Endpoint(f"{mp}/metadata?status=valid"))

        def now() -> str:
            return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        require(same_images(reference, bl.build_images(driver, tuples)), "floor")
        require(same_images(reference, bl.etree_list_images(etree_fetch, driver, now())), "etree")
        del reference
        t = interleaved(
            {
                "ours": driver.list_images,
                "floor": lambda: bl.build_images(driver, tuples),
                "fetch": lambda: fetch.request("GET", accept="application/xml"),
                "etree": lambda: bl.etree_list_images(etree_fetch, driver, now()),
            },
            repeats,
        )
    w = "P2"
    report.time(
        w, "driver.list_images()", t["ours"], f"{len(tuples):,} entries, {size / 1e6:.1f} MB"
    )
    report.time(w, "floor: objects from tuples", t["floor"])
    report.time(w, "fetch: raw HTTP, no parsing", t["fetch"])
    report.time(w, "etree: http.client + ElementTree", t["etree"])
    report.check(
        w,
        "driver / (floor + fetch)",
        paired(t["ours"], summed(t["floor"], t["fetch"])),
        op="<=",
        limit=1.5,
    )
    report.check(w, "etree / driver", paired(t["etree"], t["ours"]), op=">=", limit=10)


# ---------------------------------------------------------------------------------------------
# P3: many sites with latency


def p3(report: Report, sites: int, latency: float, vms: int, repeats: int) -> None:
    names = [f"site{i}" for i in range(sites)]
    with local_cloud(names, latency=latency) as cloud:
        for s in names:
            cloud.seed(s, vms=vms)
        driver = make_driver(cloud)
        proxies = {s: proxy_for(cloud, s) for s in names}
        sizes = bl.Sizes(
            (s.id, s.extra["cpu"], s.ram, s.extra["swap_mib"]) for s in driver.list_sizes()
        )

        def serial() -> list[Any]:
            out: list[Any] = []
            for s in names:
                out.extend(bl.etree_list_nodes(proxies[s], SESSION, s, sizes, driver))
            return out

        count = len(driver.list_nodes())
        if count != sites * vms:
            raise SystemExit(f"P3: {count} nodes, expected {sites * vms}")
        t = interleaved(
            {
                "all": driver.list_nodes,
                "one": lambda: driver.list_nodes(ex_location=names[0]),
                "serial": serial,
            },
            repeats,
        )
    w = "P3"
    report.time(
        w, f"driver.list_nodes(), {sites} sites", t["all"], f"{latency:g} s latency, {vms} VMs each"
    )
    report.time(w, "driver.list_nodes(ex_location=one site)", t["one"])
    report.time(w, "serial xmlrpc.client + ElementTree, all sites", t["serial"])
    report.check(w, f"{sites} sites / one site", paired(t["all"], t["one"]), op="<=", limit=1.3)
    report.check(
        w, "serial / driver (information)", paired(t["serial"], t["all"]), op=">=", limit=1
    )


# ---------------------------------------------------------------------------------------------
# P5: create_node + destroy_node round trips


def p5(report: Report, total: int, blocks: int) -> None:
    with local_cloud(["lal"], boot_step=0.0) as cloud:
        driver = make_driver(cloud)
        size = driver.list_sizes()[0]
        image = driver.list_images()[0]
        auth = NodeAuthSSHKey(SSH_KEY)
        node = driver.create_node(name="bench-0", size=size, image=image, auth=auth)
        template = cloud.vm_template("lal", int(node.extra["vm_id"]))
        driver.destroy_node(node)
        if template is None or "bench-0" not in template:
            raise SystemExit("P5: cannot read back the driver's template")
        proxy = proxy_for(cloud, "lal")
        mp = bl.Fetch(bl.Endpoint(f"{cloud.endpoints('lal')['marketplace']}/metadata/{image.id}"))
        disks = bl.Fetch(
            bl.Endpoint(f"{cloud.endpoints('lal')['pdisk']}/pswd/disks/", USER, PASSWORD)
        )
        per_block = max(1, total // blocks)

        def ours() -> None:
            for i in range(per_block):
                n = driver.create_node(name=f"bench-{i}", size=size, image=image, auth=auth)
                driver.destroy_node(n)

        def direct() -> None:
            for i in range(per_block):
                round_trip(i)

        def round_trip(i: int) -> None:
            # The driver's requests: the image's Marketplace entry, allocate, read back; then
            # for destroy_node, read (the VM's state), finalize and list pdisk's disks.
            mp.request("GET", accept="application/xml")
            ok, vm_id, code = proxy.one.vm.allocate(
                SESSION, template.replace("bench-0", f"bench-{i}")
            )
            if not ok:
                raise RuntimeError(f"one.vm.allocate refused ({code}): {vm_id}")
            proxy.one.vm.info(SESSION, vm_id)
            proxy.one.vm.info(SESSION, vm_id)
            ok, msg, code = proxy.one.vm.action(SESSION, "finalize", vm_id)
            if not ok:
                raise RuntimeError(f"one.vm.action refused ({code}): {msg}")
            # destroy_node then looks for pdisk mounts left for the VM (issue 14).
            disks.request("GET", accept="application/json")

        def requests(run: Callable[[], object]) -> dict[tuple[str, str, str], int]:
            keys = [("", "marketplace", "GET /metadata"), ("lal", "pdisk", "GET /disks")] + [
                ("lal", "compute", m)
                for m in ("one.system.version", "one.vm.allocate", "one.vm.info", "one.vm.action")
            ]
            before = {k: cloud.request_count(*k) for k in keys}
            run()
            return {k: cloud.request_count(*k) - before[k] for k in keys}

        def one_driver_round_trip() -> None:
            n = driver.create_node(name="bench-x", size=size, image=image, auth=auth)
            driver.destroy_node(n)

        sent = requests(one_driver_round_trip)
        if sent != requests(lambda: round_trip(0)):
            raise SystemExit(f"P5: the baseline does not make the driver's requests {sent}")

        t = interleaved({"ours": ours, "direct": direct}, blocks)
    w = "P5"
    per = 1 / per_block
    report.time(
        w,
        "driver create_node + destroy_node",
        [x * per for x in t["ours"]],
        f"per round trip, {blocks} blocks of {per_block}",
    )
    report.time(
        w, "the same requests with http.client/xmlrpc.client", [x * per for x in t["direct"]]
    )
    report.check(w, "driver / direct calls", paired(t["ours"], t["direct"]), op="<=", limit=1.2)


# ---------------------------------------------------------------------------------------------
# P8, P9: fleets (ex_create_nodes, ex_destroy_nodes) against the ideal and a loop


def p8_p9(
    report: Report, nodes: int, sites: int, latency: float, sample: int, repeats: int
) -> None:
    """The fleet against the ideal time given the per-site limit (requests per node * latency *
    nodes / (sites * limit): 2 requests per created node, allocate and read-back; 1 per
    destroyed node) and against a loop of create_node / destroy_node. The loop is timed on
    ``sample`` nodes per repetition and extrapolated to ``nodes`` (the whole loop would take
    minutes); the table says so."""
    from stratuslab_libcloud import _stratuslab

    names = [f"site{i}" for i in range(sites)]
    limit = _stratuslab.DEFAULT_MAX_IN_FLIGHT
    # Leases for every node of the run (the default public network has 100 per site).
    leases = ("10.0.0.1", 4 * nodes + 100)
    with local_cloud(names, latency=latency, boot_step=0.0, public_network=leases) as cloud:
        driver = make_driver(cloud)
        size = driver.list_sizes()[0]
        auth = NodeAuthSSHKey(SSH_KEY)
        image = driver.list_images()[0]
        warm = driver.ex_create_nodes(names, size, image, location=names, auth=auth)
        driver.ex_destroy_nodes(warm.nodes)
        fleet_c, fleet_d, loop_c, loop_d = [], [], [], []
        for r in range(repeats):
            wanted = [f"fleet-{r}-{i}" for i in range(nodes)]
            t = time.perf_counter()
            made = driver.ex_create_nodes(wanted, size, image, location=names, auth=auth)
            fleet_c.append(time.perf_counter() - t)
            if not made.ok or len(made.nodes) != nodes:
                raise SystemExit(f"P8: {len(made.nodes)} of {nodes} created: {made.failures[:3]}")
            t = time.perf_counter()
            gone = driver.ex_destroy_nodes(made.nodes)
            fleet_d.append(time.perf_counter() - t)
            if not gone.ok:
                raise SystemExit(f"P9: {gone.failures[:3]}")
            t = time.perf_counter()
            looped = [
                driver.create_node(
                    f"loop-{r}-{i}", size, image, location=names[i % sites], auth=auth
                )
                for i in range(sample)
            ]
            loop_c.append((time.perf_counter() - t) / sample * nodes)
            t = time.perf_counter()
            for n in looped:
                driver.destroy_node(n)
            loop_d.append((time.perf_counter() - t) / sample * nodes)
    ideal_c = 2 * latency * nodes / (sites * limit)
    ideal_d = 1 * latency * nodes / (sites * limit)
    where = f"{nodes} nodes, {sites} sites, {latency:g} s latency, {limit} per site"
    loop_note = f"loop timed on {sample} nodes, extrapolated to {nodes}"
    report.time("P8", "ex_create_nodes", fleet_c, where)
    report.time("P8", "create_node loop", loop_c, loop_note)
    report.check(
        "P8",
        "ex_create_nodes / ideal",
        [t / ideal_c for t in fleet_c],
        op="<=",
        limit=1.3,
        note=f"ideal {ideal_c:.2f} s",
    )
    report.check(
        "P8", "create_node loop / ex_create_nodes", paired(loop_c, fleet_c), op=">=", limit=50
    )
    report.time("P9", "ex_destroy_nodes", fleet_d, where)
    report.time("P9", "destroy_node loop", loop_d, loop_note)
    report.check(
        "P9",
        "ex_destroy_nodes / ideal",
        [t / ideal_d for t in fleet_d],
        op="<=",
        limit=1.3,
        note=f"ideal {ideal_d:.2f} s",
    )
    report.check(
        "P9", "destroy_node loop / ex_destroy_nodes", paired(loop_d, fleet_d), op=">=", limit=50
    )


# ---------------------------------------------------------------------------------------------
# P10: concurrent async calls from one event loop


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _peak_threads(loop: asyncio.AbstractEventLoop, run: Callable[[], Any]) -> int:
    """The most threads of this process seen (every millisecond) while ``run()`` runs on the
    loop; the sampling thread itself is not counted."""
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _threads() - 1)
            done.wait(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        loop.run_until_complete(run())
    finally:
        done.set()
        sampler.join()
    return peak


def p10(report: Report, calls: int, latency: float, repeats: int) -> None:
    """``calls`` concurrent ``driver.ex_async.ex_get_node`` from one event loop against the same
    requests (one.vm.info, GET /disks/ per call) sent at once by a raw asyncio client: the
    latency plus the server's own time plus the least client work (bench/RESULTS.md)."""
    with local_cloud(["lal"], latency=latency) as cloud:
        cloud.seed("lal", vms=calls)
        driver = make_driver(cloud)
        nodes = driver.list_nodes()
        if len(nodes) != calls:
            raise SystemExit(f"P10: {len(nodes)} nodes, expected {calls}")
        ids = [n.id for n in nodes]
        vm_ids = [int(n.extra["vm_id"]) for n in nodes]
        aio = driver.ex_async
        compute = bl.AsyncFetch(bl.Endpoint(pswd_url(cloud, "lal"), USER, PASSWORD))
        disks = bl.AsyncFetch(
            bl.Endpoint(f"{cloud.endpoints('lal')['pdisk']}/pswd/disks/", USER, PASSWORD)
        )
        bodies = [bl.xmlrpc_body("one.vm.info", SESSION, v) for v in vm_ids]
        loop = asyncio.new_event_loop()

        async def ours() -> list[Any]:
            return await asyncio.gather(*(aio.ex_get_node(i) for i in ids))

        async def to_thread() -> list[Any]:
            return await asyncio.gather(*(asyncio.to_thread(driver.ex_get_node, i) for i in ids))

        async def one_raw(body: bytes) -> tuple[bytes, bytes]:
            vm, listed = await asyncio.gather(
                compute.request("POST", body), disks.request("GET", accept="application/json")
            )
            return vm, listed

        async def raw() -> list[tuple[bytes, bytes]]:
            return await asyncio.gather(*(one_raw(b) for b in bodies))

        def requests(run: Callable[[], Any]) -> dict[tuple[str, str], int]:
            keys = [("compute", "one.vm.info"), ("pdisk", "GET /disks")]
            before = {k: cloud.request_count("lal", *k) for k in keys}
            loop.run_until_complete(run())
            return {k: cloud.request_count("lal", *k) - before[k] for k in keys}

        try:
            sent = requests(ours)
            if sent != requests(raw) or sent[("compute", "one.vm.info")] != calls:
                raise SystemExit(f"P10: the baseline does not make the driver's requests {sent}")
            idle = _threads()  # the driver has made its calls: runtime and result thread up
            peak_ours = _peak_threads(loop, ours)
            peak_thread = _peak_threads(loop, to_thread)
            t = interleaved(
                {
                    "ours": lambda: loop.run_until_complete(ours()),
                    "raw": lambda: loop.run_until_complete(raw()),
                    "thread": lambda: loop.run_until_complete(to_thread()),
                },
                repeats,
            )
        finally:
            compute.close()
            disks.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
    w = "P10"
    report.time(
        w,
        f"{calls} x await ex_async.ex_get_node, gathered",
        t["ours"],
        f"{latency * 1000:g} ms latency, one event loop",
    )
    report.time(w, "the same requests, raw asyncio streams (keep-alive)", t["raw"])
    report.time(w, "asyncio.to_thread(driver.ex_get_node)", t["thread"], "default executor")
    report.check(
        w, "async driver / raw asyncio client", paired(t["ours"], t["raw"]), op="<=", limit=1.5
    )
    report.check(
        w,
        "to_thread / async driver (information)",
        paired(t["thread"], t["ours"]),
        op=">=",
        limit=1,
    )
    report.quantity(w, "threads, idle driver", [float(idle)], "threads")
    report.quantity(w, "peak threads, to_thread (information)", [float(peak_thread)], "threads")
    report.check(w, "peak threads during the gather / idle", [peak_ours / idle], op="<=", limit=1)


# ---------------------------------------------------------------------------------------------
# P6: cold import


IMPORT_PROBE = (
    "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
)


def p6(report: Report, repeats: int) -> None:
    modules = {"ours": "stratuslab_libcloud", "base": "libcloud.compute.base"}
    t: dict[str, list[float]] = {k: [] for k in modules}
    for r in range(repeats + 1):
        for name in ["ours", "base"] if r % 2 == 0 else ["base", "ours"]:
            out = subprocess.run(
                [sys.executable, "-c", IMPORT_PROBE.format(module=modules[name])],
                capture_output=True,
                text=True,
                check=True,
            )
            if r > 0:  # the first round warms the file cache
                t[name].append(float(out.stdout))
    w = "P6"
    report.time(w, "import stratuslab_libcloud", t["ours"], "fresh process each")
    report.time(w, "import libcloud.compute.base", t["base"])
    report.check(
        w,
        "stratuslab_libcloud / libcloud.compute.base",
        paired(t["ours"], t["base"]),
        op="<=",
        limit=1.2,
    )


# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    vms: int
    images: int
    sites: int
    latency: float
    site_vms: int
    round_trips: int
    repeats: int
    slow_repeats: int
    rss_repeats: int
    import_repeats: int
    fleet: int = 1_000
    fleet_sample: int = 20
    fleet_repeats: int = 3
    async_calls: int = 1_000
    async_latency: float = 0.05
    async_repeats: int = 5


FULL = Plan(10_000, 5_000, 8, 0.2, 50, 1_000, 7, 3, 3, 15)
QUICK = Plan(
    1_000,
    500,
    8,
    0.2,
    50,
    100,
    3,
    1,
    1,
    5,
    fleet=480,
    fleet_sample=4,
    fleet_repeats=1,
    async_calls=100,
    async_repeats=3,
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} CPUs, load average {load}; Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def commit() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            cwd=HERE,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            check=False,
            capture_output=True,
            text=True,
            cwd=HERE,
        ).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small smoke version (CI)")
    parser.add_argument("--only", default="P1,P1-7X,P2,P3,P4,P5,P6,P8,P10", help="workloads to run")
    parser.add_argument("--repeats", type=int, help="repetitions of the fast contenders")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table there")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, *rest = args.child
        {"rss-driver": child_rss_driver, "rss-floor": child_rss_floor}[mode](*rest)
        return 0

    plan = QUICK if args.quick else FULL
    if args.repeats:
        plan.repeats = args.repeats
    only = {w.strip().upper() for w in args.only.split(",")}
    mode = "quick" if args.quick else "full"
    header = f"stratuslab-libcloud benchmarks ({mode}), commit {commit()}\n{machine()}"
    print(header, flush=True)
    report = Report()
    started = time.perf_counter()

    def step(name: str, run: Callable[[], None]) -> None:
        if name in only:
            t = time.perf_counter()
            run()
            print(f"  {name} done in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)

    if only & {"P1", "P4"}:
        with local_cloud(["lal"]) as cloud:
            cloud.seed(vms=plan.vms)
            step("P1", lambda: p1(report, cloud, plan.vms, plan.repeats, plan.slow_repeats))
            step("P4", lambda: p4(report, cloud, plan.rss_repeats))
    step("P1-7X", lambda: p1_seven(report, plan.vms, plan.repeats))
    step("P2", lambda: p2(report, plan.images, plan.repeats))
    step(
        "P3", lambda: p3(report, plan.sites, plan.latency, plan.site_vms, max(3, plan.repeats // 2))
    )
    step("P5", lambda: p5(report, plan.round_trips, 10))
    step("P6", lambda: p6(report, plan.import_repeats))
    if only & {"P8", "P9"}:
        step(
            "P8",
            lambda: p8_p9(
                report, plan.fleet, plan.sites, plan.latency, plan.fleet_sample, plan.fleet_repeats
            ),
        )

    step("P10", lambda: p10(report, plan.async_calls, plan.async_latency, plan.async_repeats))

    table = report.table()
    print(table)
    failed = report.failed()
    summary = (
        f"{len(failed)} target(s) missed: " + ", ".join(f"{r.workload} {r.label}" for r in failed)
        if failed
        else "every target met"
    )
    print(f"{summary} ({time.perf_counter() - started:.0f} s)")
    if args.markdown:
        Path(args.markdown).write_text(f"{header}\n\n{table}\n\n{summary}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
