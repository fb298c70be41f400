"""A fleet of nodes with a live progress line.

With no arguments it starts an embedded local StratusLab cloud with four sites (0.05 s of latency
per request, as a real site has some), creates 1,000 nodes spread over them with
``ex_create_nodes``, waits until they run, and destroys them with ``ex_destroy_nodes``, showing
one progress line that updates in place. Ctrl-C stops the fleet cleanly: the requests in flight
finish and what was created is printed (and destroyed again here).

    python examples/fleet.py
    python examples/fleet.py --nodes 200 --sites 2 --latency 0.2
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from libcloud.compute.base import Node, NodeAuthSSHKey

from stratuslab_libcloud import FleetInterrupted, LocalCloud, StratusLabNodeDriver

KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleFleetKeyxxxxxxxxxxxxxxxxxxxxxxxxxxx fleet@example"
)


def progress_line(
    what: str, out: TextIO = sys.stdout
) -> Callable[[int, int, Node | BaseException], None]:
    """An ``ex_progress`` callback drawing ``what: done/total (failed) rate`` in place."""
    started = time.perf_counter()
    failed = 0

    def report(done: int, total: int, item: Node | BaseException) -> None:
        nonlocal failed
        if isinstance(item, BaseException):
            failed += 1
        elapsed = max(time.perf_counter() - started, 1e-9)
        end = "\n" if done == total else ""
        out.write(
            f"\r{what}: {done:>{len(str(total))}}/{total}  failed {failed}  "
            f"{done / elapsed:7.1f} nodes/s{end}"
        )
        out.flush()

    return report


def run(nodes: int, sites: int, latency: float) -> int:
    names = [f"site{i}" for i in range(sites)]
    with LocalCloud(sites=names, boot_step=0.01, latency=latency) as cloud:
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
        size = driver.list_sizes()[0]
        image = driver.list_images()[0]
        wanted = [f"worker-{i:04d}" for i in range(nodes)]
        started = time.perf_counter()
        try:
            result = driver.ex_create_nodes(
                wanted,
                size,
                image,
                location=names,
                auth=NodeAuthSSHKey(KEY),
                ex_progress=progress_line("create"),
            )
        except FleetInterrupted as stop:
            print(f"\ninterrupted: {len(stop.result.nodes)} created, destroying them again")
            driver.ex_destroy_nodes(stop.result.nodes)
            return 130
        print(f"created {len(result.nodes)} in {time.perf_counter() - started:.1f} s")
        for name, exc in result.failures:
            print(f"  {name}: {exc}")
        running = driver.wait_until_running(result.nodes, wait_period=0.2, timeout=300)
        print(f"{len(running)} running")
        gone = driver.ex_destroy_nodes(result.nodes, ex_progress=progress_line("destroy"))
        print(f"destroyed {len(gone.nodes)}; failed {len(gone.failures)}")
        return 0 if result.ok and gone.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    args = parser.parse_args(argv)
    return run(args.nodes, args.sites, args.latency)


if __name__ == "__main__":
    sys.exit(main())
