"""16 concurrent independent clients (threads: 8 with ``xmlrpc.client``, 8 with ``requests``)
against a two-site local cloud: no error, no deadlock, and a final state that adds up.

The default run stresses for a few seconds; ``-m slow`` runs the 30 s variant (skipped
otherwise, so that a plain ``pytest`` stays quick).
"""

from __future__ import annotations

import re
import threading
import time
import traceback
import xmlrpc.client
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests

from stratuslab_libcloud.localcloud import LocalCloud

SITES = ("lal", "grnet")
THREADS = 16
TEMPLATE = (
    'NAME = "stress"\nCPU = 0.5\nMEMORY = 128\nDISK = [ IMAGE_ID = 0, TARGET = "hda" ]\n'
    'NIC = [ NETWORK = "private", NETWORK_UNAME = "oneadmin" ]\n'
)


@dataclass
class Tally:
    """What one client did, to check the final state against."""

    allocated: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in SITES})
    finalized: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in SITES})
    created: int = 0
    deleted: int = 0
    kept: tuple[str, str, str] | None = None  # (site, disk uuid, vm id) left attached
    calls: int = 0
    errors: list[str] = field(default_factory=list)


def compute_client(cloud: LocalCloud, user: str, password: str, n: int, stop: float) -> Tally:
    """Allocates, reads, lists and kills VMs, alternating sites."""
    tally = Tally()
    session = f"{user}:{password}"
    proxies = {s: xmlrpc.client.ServerProxy(cloud.endpoints(s)["rpc2"]) for s in SITES}
    i = 0
    while time.monotonic() < stop:
        site = SITES[(n + i) % 2]
        proxy = proxies[site]
        ok, vm_id, code = proxy.one.vm.allocate(session, TEMPLATE)
        assert (ok, code) == (True, 0), vm_id
        tally.allocated[site].append(vm_id)
        ok, doc, _ = proxy.one.vm.info(session, vm_id)
        assert ok and f"<ID>{vm_id}</ID>" in doc
        ok, pool, _ = proxy.one.vmpool.info(session, -3, -1, -1, -1)
        assert ok and pool.startswith("<VM_POOL>")
        # Kill every other VM: half stay alive until the end.
        if i % 2:
            assert proxy.one.vm.action(session, "finalize", vm_id) == [True, vm_id, 0]
            tally.finalized[site].append(vm_id)
        tally.calls += 4 if i % 2 else 3
        i += 1
    return tally


def rest_client(
    cloud: LocalCloud, user: str, password: str, vm: tuple[str, int, str], stop: float
) -> Tally:
    """Creates, describes, attaches, detaches and deletes disks on its own VM; reads the
    Marketplace. Leaves its last disk attached."""
    tally = Tally()
    site, vm_id, node = vm
    s = requests.Session()
    s.auth = (user, password)
    base = cloud.endpoints(site)["pdisk"] + "/pswd/disks/"
    market = cloud.endpoints(site)["marketplace"] + "/metadata"
    headers = {"Accept": "application/json"}
    while True:
        r = s.post(base, data={"size": "1", "tag": "stress"}, headers=headers)
        assert r.status_code == 201, r.text
        uuid = r.json()["uuid"]
        tally.created += 1
        assert s.get(base + uuid, headers=headers).json()["uuid"] == uuid
        r = s.post(base + uuid + "/mounts/", data={"node": node, "vm_id": str(vm_id)})
        assert r.status_code == 200, r.text
        assert r.json()["target"] == "vdz"  # its own VM: the previous disk was detached
        assert s.get(market, params={"media": "json"}).status_code == 200
        tally.calls += 4
        if time.monotonic() >= stop:
            tally.kept = (site, uuid, str(vm_id))
            return tally
        r = s.delete(f"{base}{uuid}/mounts/{uuid}_{vm_id}", headers=headers)
        assert r.json()["target"] == "vdz"
        assert s.delete(base + uuid, headers=headers).status_code == 200
        tally.deleted += 1
        assert s.get(base, headers=headers).status_code == 200
        tally.calls += 3


def run(seconds: float) -> None:
    users = {f"user{n}": f"pw{n}" for n in range(THREADS)}
    users["oneadmin"] = "admin-pw"
    with LocalCloud(list(SITES), users=users, boot_step=0.01) as cloud:
        # One running VM per REST client, at alternating sites, owned by that client.
        vms: dict[int, tuple[str, int, str]] = {}
        rpc = {s: xmlrpc.client.ServerProxy(cloud.endpoints(s)["rpc2"]) for s in SITES}
        for n in range(1, THREADS, 2):
            site = SITES[n // 2 % 2]
            cloud.seed(site, vms=1, owner=f"user{n}")
            vm_id = cloud.vm_ids(site)[-1]
            _, doc, _ = rpc[site].one.vm.info(f"user{n}:pw{n}", vm_id)
            host = re.search(r"<HISTORY>.*<HOSTNAME>([^<]+)</HOSTNAME>", doc)
            assert host is not None
            vms[n] = (site, vm_id, host[1])
        seeded = {s: list(cloud.vm_ids(s)) for s in SITES}

        tallies: dict[int, Tally] = {}
        stop = time.monotonic() + seconds

        def worker(n: int) -> None:
            try:
                if n % 2 == 0:
                    tallies[n] = compute_client(cloud, f"user{n}", f"pw{n}", n, stop)
                else:
                    tallies[n] = rest_client(cloud, f"user{n}", f"pw{n}", vms[n], stop)
            except BaseException:
                tallies[n] = Tally(errors=[traceback.format_exc()])

        threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 120)
        assert not [t.name for t in threads if t.is_alive()], "deadlock: threads still running"
        errors = [e for t in tallies.values() for e in t.errors]
        assert errors == [], errors[0]
        assert sorted(tallies) == list(range(THREADS))
        assert all(t.calls > 0 for t in tallies.values())

        # Compute: every allocated id is distinct and present; the finalized ones are DONE,
        # the others are not; the request counter saw every allocate.
        for site in SITES:
            allocated = [i for t in tallies.values() for i in t.allocated[site]]
            finalized = {i for t in tallies.values() for i in t.finalized[site]}
            assert len(allocated) == len(set(allocated))
            assert sorted(cloud.vm_ids(site)) == sorted(seeded[site] + allocated)
            for vm_id in allocated:
                state = cloud.vm_state(site, vm_id)
                assert state is not None
                assert (state[0] == 6) == (vm_id in finalized), (site, vm_id, state)
            assert cloud.request_count(site, "compute", "one.vm.allocate") == len(allocated)
            # oneadmin's listing holds exactly the live VMs, with distinct private addresses.
            ok, pool, _ = rpc[site].one.vmpool.info("oneadmin:admin-pw", -2, -1, -1, -1)
            assert ok
            live = set(seeded[site]) | (set(allocated) - finalized)
            assert [int(i) for i in re.findall(r"<VM><ID>(\d+)</ID>", pool)] == sorted(live)
            ips = Counter(re.findall(r"<IP><!\[CDATA\[([^\]]+)\]\]></IP>", pool))
            assert len(ips) == len(live)
            assert all(c == 1 for c in ips.values()), ips.most_common(3)

        # pdisk: exactly the kept disks remain, each attached once to its client's VM.
        for site in SITES:
            kept = {
                (t.kept[1], t.kept[2]) for t in tallies.values() if t.kept and t.kept[0] == site
            }
            disks = cloud.disks(site)
            assert {(d["uuid"], d["mounts"][0]["vm_id"]) for d in disks} == kept
            assert all(len(d["mounts"]) == 1 and d["mounts"][0]["device"] == "vdz" for d in disks)
        created = sum(t.created for t in tallies.values())
        deleted = sum(t.deleted for t in tallies.values())
        assert created - deleted == THREADS // 2


def test_sixteen_concurrent_clients_for_a_few_seconds() -> None:
    run(3.0)


@pytest.mark.slow
def test_sixteen_concurrent_clients_for_thirty_seconds(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("30 s soak: run with -m slow")
    run(30.0)
