"""Threads and fork.

Threads: 16 Python threads share one driver and run 100 mixed operations each (create, get,
list, destroy nodes; create, attach, detach, list, destroy volumes; list images) against a
two-site local cloud. No call fails, every thread always sees its own nodes and volumes (and not
those it destroyed), and at the end the server holds exactly what the threads say: every VM
they created is DONE, no disk is left, one ``one.vm.allocate`` per node created.

Fork: after ``os.fork()`` the child can use the parent's driver and a new one, even while other
threads of the parent were busy with requests; never a hang (each scenario runs in a subprocess
with a deadline).
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from conftest import CloudFactory
from libcloud.compute.base import Node, NodeAuthSSHKey, StorageVolume

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver

THREADS = 16
OPERATIONS = 100
IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIThreadsxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx t@t"
)
SITES = ("lal", "grnet")


@pytest.fixture
def cloud(make_cloud: CloudFactory) -> LocalCloud:
    return make_cloud(sites=list(SITES), boot_step=0.0)


@dataclass
class Ledger:
    """What one thread did, to be checked against the server."""

    created: list[Node] = field(default_factory=list)
    destroyed: set[str] = field(default_factory=set)
    volumes_created: int = 0
    attaches: int = 0
    ops: dict[str, int] = field(default_factory=dict)


def worker(index: int, driver: StratusLabNodeDriver, start: threading.Barrier) -> Ledger:
    rng = random.Random(index)
    size = driver.list_sizes()[0]
    ledger = Ledger()
    nodes: list[Node] = []
    volumes: list[StorageVolume] = []
    attached: dict[str, Node] = {}  # volume id → node
    images = {i.id for i in driver.list_images()}
    start.wait()

    def check_listing() -> None:
        listed = {n.id: n for n in driver.list_nodes()}
        for n in nodes:
            assert n.id in listed and listed[n.id].name == n.name, (n.id, sorted(listed))
        assert not ledger.destroyed & set(listed)

    for k in range(OPERATIONS):
        choices = ["list_nodes", "list_volumes", "list_images", "get_node"]
        if len(nodes) < 3:
            choices += ["create_node"] * 2
        if nodes:
            choices.append("destroy_node")
        if len(volumes) < 2:
            choices.append("create_volume")
        if any(v.id not in attached for v in volumes):
            choices += ["destroy_volume", "attach"]
        if attached:
            choices.append("detach")
        op = rng.choice(choices)
        ledger.ops[op] = ledger.ops.get(op, 0) + 1
        if op == "create_node":
            site = rng.choice(SITES)
            node = driver.create_node(f"t{index}-{k}", size, IMAGE, location=site, auth=KEY)
            assert node.extra["location"] == site and node.name == f"t{index}-{k}"
            nodes.append(node)
            ledger.created.append(node)
        elif op == "destroy_node":
            node = nodes.pop(rng.randrange(len(nodes)))
            for vid, n in list(attached.items()):
                if n.id == node.id:
                    driver.detach_volume(next(v for v in volumes if v.id == vid))
                    del attached[vid]
            assert driver.destroy_node(node)
            ledger.destroyed.add(node.id)
        elif op == "list_nodes":
            check_listing()
        elif op == "get_node":
            if nodes:
                node = rng.choice(nodes)
                assert driver.ex_get_node(node.id).name == node.name
        elif op == "create_volume":
            volume = driver.create_volume(1, f"t{index}-{k}", location=rng.choice(SITES))
            volumes.append(volume)
            ledger.volumes_created += 1
        elif op == "destroy_volume":
            free = [v for v in volumes if v.id not in attached]
            volume = free[rng.randrange(len(free))]
            assert driver.destroy_volume(volume)
            volumes.remove(volume)
        elif op == "attach":
            free = [v for v in volumes if v.id not in attached]
            volume = rng.choice(free)
            same_site = [n for n in nodes if n.extra["location"] == volume.extra["location"]]
            if same_site:
                node = rng.choice(same_site)
                assert driver.attach_volume(node, volume)
                attached[volume.id] = node
                ledger.attaches += 1
        elif op == "detach":
            vid = rng.choice(sorted(attached))
            assert driver.detach_volume(next(v for v in volumes if v.id == vid))
            del attached[vid]
        elif op == "list_volumes":
            listed = {v.id for v in driver.list_volumes()}
            assert {v.id for v in volumes} <= listed
        elif op == "list_images":
            assert {i.id for i in driver.list_images()} == images
    check_listing()
    for vid in list(attached):
        driver.detach_volume(next(v for v in volumes if v.id == vid))
    for v in volumes:
        driver.destroy_volume(v)
    for n in nodes:
        driver.destroy_node(n)
        ledger.destroyed.add(n.id)
    return ledger


def test_sixteen_threads_share_one_driver(cloud: LocalCloud) -> None:
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, timeout=30.0)
    start = threading.Barrier(THREADS)
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(worker, i, driver, start) for i in range(THREADS)]
        ledgers = [f.result(timeout=600) for f in futures]

    created = [n for ledger in ledgers for n in ledger.created]
    assert sum(sum(ledger.ops.values()) for ledger in ledgers) == THREADS * OPERATIONS
    assert len({n.id for n in created}) == len(created) > THREADS
    assert set().union(*(ledger.destroyed for ledger in ledgers)) == {n.id for n in created}
    for site in SITES:
        ids = [n for n in created if n.extra["location"] == site]
        server = cloud.vm_ids(site)
        assert sorted(int(n.id.split("@")[0]) for n in ids) == sorted(server)
        assert {cloud.vm_state(site, i) for i in server} <= {(6, 0)}  # all DONE
        assert cloud.request_count(site, "compute", "one.vm.allocate") == len(ids)
        assert cloud.disks(site) == []
    assert driver.list_nodes() == [] and driver.list_volumes() == []
    # pdisk POSTs: one per volume created and one per attach, nothing more.
    posts = sum(cloud.request_count(s, "pdisk", "POST /disks") for s in SITES)
    assert posts == sum(ledger.volumes_created + ledger.attaches for ledger in ledgers)


FORK_SCRIPT = textwrap.dedent(
    """
    import os, sys, threading, time
    from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver

    scenario = sys.argv[1]
    with LocalCloud(sites=["lal"], boot_step=0.0) as cloud:
        cloud.seed("lal", vms=3)
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, timeout=5.0)
        assert len(driver.list_nodes()) == 3
        stop = threading.Event()
        busy = []
        if scenario == "busy":
            def hammer():
                while not stop.is_set():
                    driver.list_nodes()
            busy = [threading.Thread(target=hammer) for _ in range(4)]
            for t in busy:
                t.start()
            time.sleep(0.2)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                started = time.monotonic()
                if scenario in ("inherited", "busy"):
                    print("inherited", len(driver.list_nodes(ex_strict=True)), flush=True)
                fresh = StratusLabNodeDriver(ex_config_file=cloud.config_file, timeout=5.0)
                print("fresh", len(fresh.list_nodes(ex_strict=True)), flush=True)
                print("elapsed-ok", time.monotonic() - started < 5.0, flush=True)
                code = 0
            except BaseException as exc:
                print("child error", type(exc).__name__, exc, flush=True)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        stop.set()
        for t in busy:
            t.join()
        print("parent", len(driver.list_nodes()), os.waitstatus_to_exitcode(status), flush=True)
    """
)


@pytest.mark.parametrize("scenario", ["inherited", "fresh", "busy"])
def test_a_forked_child_can_use_a_driver_and_never_hangs(scenario: str) -> None:
    out = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", FORK_SCRIPT, scenario],
        capture_output=True,
        check=False,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    expected = ["fresh 3", "elapsed-ok True", "parent 3 0"]
    if scenario != "fresh":
        expected.insert(0, "inherited 3")
    assert lines == expected, out.stdout + out.stderr
