"""A tour of the StratusLab Libcloud driver.

With no arguments it starts an embedded local StratusLab cloud with two sites and walks through
locations, sizes, images, a node (created with a demo SSH public key, waited for, listed, destroyed)
and a volume (created, attached, listed, detached, destroyed). With ``--config PATH`` it talks to
a real StratusLab/OpenNebula site instead: read-only listings unless ``--create`` is given.

    python examples/quickstart.py
    python examples/quickstart.py --config ~/.stratuslab/stratuslab-user.cfg --location lal
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from libcloud.compute.base import Node, NodeAuthSSHKey, NodeDriver, StorageVolume
from libcloud.compute.providers import get_driver

# Importing the package registers the "stratuslab" provider with libcloud.
from stratuslab_libcloud import StratusLabNodeDriver

T = TypeVar("T")


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """A plain-text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("    " + line for line in lines)


def step(title: str, action: Callable[[], T]) -> T:
    """Runs one step of the tour, printing its title and how long it took."""
    print(f"\n== {title}", flush=True)
    started = time.perf_counter()
    result = action()
    print(f"   ({(time.perf_counter() - started) * 1000:.0f} ms)", flush=True)
    return result


# The public half of an Ed25519 key pair whose private half was thrown away: the local cloud only
# puts it in the VM context, so the tour needs no key generator (and nobody can log in with it).
DEMO_PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII50iyNhIFuFYlY7vsP7hLZhPIfx1P6JE9DGyEfR77Hn"
    " quickstart@stratuslab-libcloud"
)


def show_listings(driver: NodeDriver) -> None:
    locations = step("Locations (one per site of the configuration)", driver.list_locations)
    print(table([(loc.id, loc.name, loc.country) for loc in locations], ["id", "name", "country"]))
    sizes = step("Sizes (instance types)", driver.list_sizes)
    print(
        table(
            [(s.id, s.extra["cpu"], s.ram, s.extra["swap_mib"]) for s in sizes],
            ["id", "cpu", "ram MiB", "swap MiB"],
        )
    )
    images = step("Images (Marketplace)", driver.list_images)
    print(
        table(
            [
                (i.id, i.name[:40], i.extra.get("os") or "", i.extra.get("format") or "")
                for i in images
            ],
            ["id", "name", "os", "format"],
        )
    )
    nodes = step("Nodes at every site (queried concurrently)", driver.list_nodes)
    print_nodes(nodes)
    volumes = step("Volumes at every site", driver.list_volumes)
    print_volumes(volumes)


def print_volumes(volumes: Sequence[StorageVolume]) -> None:
    print(
        table(
            [(v.id, v.name, v.size, v.state, (v.extra or {}).get("location")) for v in volumes],
            ["id", "name", "GiB", "state", "site"],
        )
    )


def print_nodes(nodes: Sequence[Node]) -> None:
    print(
        table(
            [
                (n.id, n.name, n.state, ",".join(n.public_ips + n.private_ips), n.extra["host"])
                for n in nodes
            ],
            ["id", "name", "state", "ips", "host"],
        )
    )


def tour(driver: StratusLabNodeDriver, location: str | None) -> None:
    """Creates, uses and deletes one node and one volume."""
    show_listings(driver)
    loc = driver.list_locations()[0] if location is None else location
    size = next(s for s in driver.list_sizes() if s.id == "m1.small")
    image = driver.list_images(location=loc)[0]
    node = step(
        f"Create node 'quickstart' ({size.id}, image {image.name!r})",
        lambda: driver.create_node(
            name="quickstart",
            size=size,
            image=image,
            location=loc,
            auth=NodeAuthSSHKey(DEMO_PUBLIC_KEY),
        ),
    )
    print(f"   node {node.id}: {node.state}, ips {node.public_ips + node.private_ips}")

    def wait() -> Any:
        print("   waiting for RUNNING", end="", flush=True)
        started = time.monotonic()
        while True:
            current = next(n for n in driver.list_nodes() if n.id == node.id)
            print(f" {current.state}", end="", flush=True)
            if current.state == "running":
                break
            if time.monotonic() - started > 60:
                raise TimeoutError("node did not reach RUNNING in 60 s")
            time.sleep(0.2)
        print(flush=True)
        return driver.wait_until_running([node], wait_period=0.2, timeout=60)

    ((running, ips),) = step("wait_until_running", wait)
    print(f"   {running.id} is running on host {running.extra['host']}, ips {ips}")
    volume = step(
        "Create a 10 GiB volume",
        lambda: driver.create_volume(10, "quickstart-data", location=loc),
    )
    print(f"   volume {volume.id} ({volume.size} GiB, {volume.state})")
    step("Attach it to the node", lambda: driver.attach_volume(running, volume))
    print(f"   attached as {(volume.extra or {}).get('device')}")
    nodes = step("List nodes", driver.list_nodes)
    print_nodes(nodes)
    volumes = step("List volumes", driver.list_volumes)
    print_volumes(volumes)
    step("Detach the volume", lambda: driver.detach_volume(volume))
    step("Destroy the volume", lambda: driver.destroy_volume(volume))
    step("Destroy the node", lambda: driver.destroy_node(running))
    remaining = [n.id for n in driver.list_nodes() if n.id == node.id]
    print(f"   node still listed: {bool(remaining)}")


@contextmanager
def embedded_cloud() -> Iterator[str]:
    """A two-site local cloud; yields its configuration file."""
    from stratuslab_libcloud import LocalCloud

    with LocalCloud(sites=["lal", "grnet"], boot_step=0.1) as cloud:
        print(f"Local StratusLab cloud on {cloud.base_url} (sites: lal, grnet)")
        assert cloud.config_file is not None
        yield cloud.config_file


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="a stratuslab-user.cfg of a real site")
    parser.add_argument("--location", help="the site to create things at")
    parser.add_argument(
        "--create", action="store_true", help="with --config: also create and delete a node"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cls = get_driver("stratuslab")
    assert issubclass(cls, StratusLabNodeDriver)  # narrows get_driver's type[NodeDriver]
    if args.config:
        driver = cls(ex_config_file=args.config, ex_default_location=args.location)
        if args.create:
            tour(driver, args.location)
        else:
            show_listings(driver)
    else:
        with embedded_cloud() as config:
            tour(cls(ex_config_file=config), args.location)
    print(f"\nDone in {time.perf_counter() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
