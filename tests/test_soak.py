"""Soak: repeated node create/destroy cycles and volume create/attach/detach/destroy cycles with
one driver. The process's resident memory grows by less than 10 %, no file descriptor is left
behind once the driver is gone, and the cloud is left with no running VM and no disk.

The local cloud runs in its own process (``python -m stratuslab_libcloud.localcloud``) so that
its state (every VM stays listed, DONE) is not counted in this process's memory.

Default run: 100 cycles of each. ``make soak`` (``pytest -m slow``): 1,000 of each.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from libcloud.compute.base import NodeAuthSSHKey
from libcloud.compute.types import NodeState

from stratuslab_libcloud import StratusLabNodeDriver

IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISoakxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx s@k"
)
SHORT, LONG = 100, 1000


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("soak") / "stratuslab-user.cfg"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stratuslab_libcloud.localcloud",
            "--sites",
            "lal",
            "--boot-step",
            "0",
            "--write-config",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 60
        for line in server.stdout:  # the server prints its endpoints, then "serving"
            if line.startswith("serving") or time.monotonic() > deadline:
                break
        assert path.is_file(), "the local cloud did not start"
        yield path
    finally:
        server.terminate()
        server.wait(timeout=30)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Figures:
    cycles: int
    seconds: float
    rss_before_kib: int
    rss_after_kib: int
    fds_before: int
    fds_after: int

    @property
    def growth(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.rss_before_kib

    def __str__(self) -> str:
        return (
            f"{self.cycles} cycles in {self.seconds:.1f} s, RSS {self.rss_before_kib} → "
            f"{self.rss_after_kib} KiB ({self.growth:+.1%}), "
            f"fds {self.fds_before} → {self.fds_after}"
        )


def node_cycles(driver: StratusLabNodeDriver, n: int) -> None:
    size = driver.list_sizes()[0]
    for i in range(n):
        node = driver.create_node(f"soak-{i}", size, IMAGE, auth=KEY)
        assert node.state == NodeState.RUNNING
        assert driver.destroy_node(node)


def volume_cycles(driver: StratusLabNodeDriver, n: int) -> None:
    node = driver.create_node("soak-host", driver.list_sizes()[0], IMAGE, auth=KEY)
    try:
        for i in range(n):
            volume = driver.create_volume(1, f"soak-{i}")
            assert driver.attach_volume(node, volume)
            assert driver.detach_volume(volume)
            assert driver.destroy_volume(volume)
    finally:
        driver.destroy_node(node)


def settled_fds(limit: int | None = None) -> int:
    """The fd count once closed connections are gone (their tasks close them asynchronously):
    at most ``limit``, or unchanged for 0.3 s."""
    deadline = time.monotonic() + 10
    last, since = fds(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.01)
        now = fds()
        if limit is not None and now <= limit:
            return now
        if now != last:
            last, since = now, time.monotonic()
        elif limit is None and time.monotonic() - since > 0.3:
            return now
    return fds()


def soak(config: Path, cycles: int, kind: str) -> Figures:
    run = node_cycles if kind == "nodes" else volume_cycles
    # Warm-up with a driver of its own: the runtime, caches and allocator arenas exist after it;
    # its connections are closed with it, so the fd baseline has none.
    warm = StratusLabNodeDriver(ex_config_file=config, timeout=30.0)
    run(warm, max(10, cycles // 10))
    del warm
    gc.collect()
    handles = settled_fds()
    driver = StratusLabNodeDriver(ex_config_file=config, timeout=30.0)
    rss = rss_kib()
    started = time.monotonic()
    run(driver, cycles)
    assert driver.list_nodes(ex_strict=True) == []
    assert driver.list_volumes(ex_strict=True) == []
    gc.collect()
    elapsed, rss_after = time.monotonic() - started, rss_kib()
    del driver
    gc.collect()
    figures = Figures(cycles, elapsed, rss, rss_after, handles, settled_fds(handles))
    print(f"\nsoak {kind}: {figures}")
    assert figures.growth < 0.10, str(figures)
    assert figures.fds_after <= figures.fds_before, str(figures)
    return figures


@pytest.mark.parametrize("kind", ["nodes", "volumes"])
def test_soak_short(config: Path, kind: str) -> None:
    soak(config, SHORT, kind)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["nodes", "volumes"])
def test_soak_long(config: Path, kind: str, request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the long soak runs with -m slow (make soak)")
    soak(config, LONG, kind)
