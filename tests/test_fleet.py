"""Fleet operations (README "Fleet operations"): ``ex_create_nodes``, ``ex_destroy_nodes``,
``wait_until_running`` over many nodes, progress, Ctrl-C, and the local cloud keeping up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import CloudFactory
from libcloud.compute.base import Node, NodeAuthSSHKey
from libcloud.compute.types import NodeState

from stratuslab_libcloud import (
    FleetInterrupted,
    FleetResult,
    LocalCloud,
    StratusLabNodeDriver,
    _stratuslab,
)
from stratuslab_libcloud.errors import StratusLabProviderError

ROOT = Path(__file__).parent.parent
IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFleetKeyxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx f@l"
)
DONE = 6
BIG = ("10.16.0.1", 60_000)  # a public network with room for big fleets


@pytest.fixture
def cloud(make_cloud: CloudFactory) -> LocalCloud:
    return make_cloud(sites=["lal", "grnet"], boot_step=0.0)


def make_driver(cloud: LocalCloud, **kwargs: Any) -> StratusLabNodeDriver:
    kwargs.setdefault("retry_delay", 0.01)
    return StratusLabNodeDriver(ex_config_file=cloud.config_file, **kwargs)


def live(cloud: LocalCloud, site: str) -> list[int]:
    return [
        vm
        for vm in cloud.vm_ids(site)
        if (state := cloud.vm_state(site, vm)) is not None and state[0] != DONE
    ]


def fleet(driver: StratusLabNodeDriver, names: list[str], **kwargs: Any) -> FleetResult:
    return driver.ex_create_nodes(names, driver.list_sizes()[0], IMAGE, auth=KEY, **kwargs)


def test_nodes_are_created_spread_and_reported_in_input_order(cloud: LocalCloud) -> None:
    driver = make_driver(cloud)
    names = [f"n{i:02d}" for i in range(40)]
    seen: list[tuple[int, int, str]] = []
    result = fleet(
        driver,
        names,
        location=["lal", "grnet"],
        ex_progress=lambda done, total, n: seen.append((done, total, n.name)),  # type: ignore[union-attr]
    )
    assert result.ok and not result.failures and not result.not_sent
    assert [n.name for n in result.nodes] == names
    assert [n.extra["location"] for n in result.nodes] == ["lal", "grnet"] * 20
    assert len({n.extra["client_token"] for n in result.nodes}) == 40
    assert [d for d, _, _ in seen] == list(range(1, 41))
    assert {t for _, t, _ in seen} == {40}
    assert sorted(name for _, _, name in seen) == names
    assert len(live(cloud, "lal")) == len(live(cloud, "grnet")) == 20
    # The image was resolved once per site, not once per node.
    assert cloud.request_count("", "marketplace", "GET /metadata") <= 2


def test_failures_are_listed_by_name_in_input_order_and_create_nothing(cloud: LocalCloud) -> None:
    driver = make_driver(cloud)
    cloud.inject_fault(
        "one_error", site="grnet", service="compute", op="one.vm.allocate", code=2048
    )
    names = ["a", " bad", "b", "c", "", "d"]
    result = fleet(driver, names, location=["lal", "grnet"])
    # lal: a, b, "" ; grnet: " bad", c, d
    assert [n.name for n in result.nodes] == ["a", "b"]
    assert [name for name, _ in result.failures] == [" bad", "c", "", "d"]
    # 2048 (ACTION) is a refusal caused by remote state: a StratusLabStateError, which is a
    # StratusLabProviderError; the names refused before sending are ValueErrors.
    kinds = [type(e) for _, e in result.failures]
    assert kinds[0] is ValueError and kinds[2] is ValueError
    assert all(issubclass(k, StratusLabProviderError) for k in (kinds[1], kinds[3]))
    assert "code 2048" in str(result.failures[1][1])
    assert len(live(cloud, "lal")) == 2 and live(cloud, "grnet") == []
    assert not result.ok


def test_at_most_max_in_flight_requests_per_site() -> None:
    with LocalCloud(sites=["lal"], boot_step=0.0, latency=0.1) as cloud:
        driver = make_driver(cloud)
        fleet(driver, ["warm"])  # version and image resolved: only allocate + read-back remain
        started = time.monotonic()
        result = fleet(driver, [f"n{i}" for i in range(20)], ex_max_in_flight=5)
        elapsed = time.monotonic() - started
        assert len(result.nodes) == 20
        # 20 nodes * 2 requests * 0.1 s / 5 in flight: at least 0.8 s when the bound holds.
        assert elapsed >= 0.8, elapsed


def test_the_defaults_are_exported() -> None:
    from stratuslab_libcloud import fleet as fleet_module

    assert fleet_module.DEFAULT_MAX_IN_FLIGHT == _stratuslab.DEFAULT_MAX_IN_FLIGHT == 10
    assert fleet_module.DEFAULT_SETTLE == _stratuslab.DEFAULT_SETTLE == 30.0


def test_bad_fleet_arguments_are_refused_before_anything_is_sent(cloud: LocalCloud) -> None:
    driver = make_driver(cloud)
    with pytest.raises(ValueError, match="repeat a token"):
        fleet(driver, ["a", "b"], ex_client_tokens=["t", "t"])
    with pytest.raises(ValueError, match="one token per name"):
        fleet(driver, ["a", "b"], ex_client_tokens=["t"])
    with pytest.raises(ValueError, match="ex_max_in_flight"):
        fleet(driver, ["a"], ex_max_in_flight=0)
    with pytest.raises(TypeError, match="sequence of str"):
        fleet(driver, "ab")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown location"):
        fleet(driver, ["a"], location=["lal", "nowhere"])
    assert cloud.request_count("lal", "compute", "one.vm.allocate") == 0


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("drop", {}),
        ("status", {"status": 503}),
        ("drop_after", {}),
        ("reset", {}),
        ("truncated", {}),
        ("status_after", {"status": 503}),
        ("late", {"seconds": 1.5}),
    ],
)
def test_a_fleet_under_lost_replies_leaves_exactly_one_vm_per_node(
    cloud: LocalCloud, kind: str, params: dict[str, Any]
) -> None:
    driver = make_driver(cloud, ex_retries=3, timeout=1.0)
    cloud.inject_fault(kind, service="compute", op="one.vm.allocate", times=4, **params)
    names = [f"f{i}" for i in range(12)]
    result = fleet(driver, names, location=["lal", "grnet"], ex_settle=3.0)
    assert result.ok, result.failures
    assert [n.name for n in result.nodes] == names
    ids = {(n.extra["location"], n.extra["vm_id"]) for n in result.nodes}
    on_server = {(s, vm) for s in ("lal", "grnet") for vm in live(cloud, s)}
    assert on_server == ids


def test_the_final_check_keeps_the_oldest_of_a_token(cloud: LocalCloud) -> None:
    import xmlrpc.client

    driver = make_driver(cloud)
    first = fleet(driver, ["x"], location="lal", ex_client_tokens=["tok-x"]).nodes[0]
    template = cloud.vm_template("lal", first.extra["vm_id"])
    session = f"{next(iter(cloud.users))}:{next(iter(cloud.users.values()))}"
    proxy = xmlrpc.client.ServerProxy(cloud.endpoints("lal")["rpc2"])
    assert proxy.one.vm.allocate(session, template)[0]  # type: ignore[index]
    assert len(live(cloud, "lal")) == 2
    again = fleet(driver, ["x"], location="lal", ex_client_tokens=["tok-x"])
    assert [n.id for n in again.nodes] == [first.id]
    assert live(cloud, "lal") == [first.extra["vm_id"]]


def test_destroy_nodes(cloud: LocalCloud) -> None:
    driver = make_driver(cloud)
    created = fleet(driver, [f"d{i}" for i in range(10)], location=["lal", "grnet"]).nodes
    seen: list[int] = []
    result = driver.ex_destroy_nodes(
        [*created, "999@lal"], ex_progress=lambda done, total, _: seen.append(done)
    )
    assert [n.id for n in result.nodes] == [n.id for n in created]
    assert [node_id for node_id, _ in result.failures] == ["999@lal"]
    assert isinstance(result.failures[0][1], StratusLabProviderError)
    assert sorted(seen) == list(range(1, 12))
    assert live(cloud, "lal") == live(cloud, "grnet") == []


def test_wait_until_running_asks_one_pool_per_site_per_round() -> None:
    with LocalCloud(sites=["lal", "grnet", "cesnet"], boot_step=0.05) as cloud:
        driver = make_driver(cloud)
        nodes = fleet(driver, [f"w{i}" for i in range(12)], location=["lal", "grnet"]).nodes
        info_before = sum(
            cloud.request_count(s, "compute", "one.vm.info") for s in ("lal", "grnet")
        )
        ready = driver.wait_until_running(nodes, wait_period=0.05, timeout=30)
        assert sorted(n.id for n, _ in ready) == sorted(n.id for n in nodes)
        assert all(n.state == NodeState.RUNNING and ips for n, ips in ready)
        info_after = sum(cloud.request_count(s, "compute", "one.vm.info") for s in ("lal", "grnet"))
        assert info_after == info_before  # never one request per node
        pools = [cloud.request_count(s, "compute", "one.vmpool.info") for s in ("lal", "grnet")]
        assert pools[0] == pools[1] >= 1  # one per site per round
        # A site without any of the nodes is still asked when several sites are (list_nodes
        # asks every site at once); with one site only that one is asked.
        one = fleet(driver, ["solo"], location="cesnet").nodes
        lal_before = cloud.request_count("lal", "compute", "one.vmpool.info")
        driver.wait_until_running(one, wait_period=0.05, timeout=30)
        assert cloud.request_count("lal", "compute", "one.vmpool.info") == lal_before


def test_an_exception_in_the_progress_callback_stops_sending_and_is_raised() -> None:
    with LocalCloud(sites=["lal"], boot_step=0.0, latency=0.02, public_network=BIG) as cloud:
        _progress_raises(cloud)


def _progress_raises(cloud: LocalCloud) -> None:
    driver = make_driver(cloud)

    def progress(done: int, total: int, node: Node | BaseException) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(FleetInterrupted) as info:
        fleet(
            driver,
            [f"c{i}" for i in range(200)],
            location="lal",
            ex_max_in_flight=2,
            ex_progress=progress,
        )
    result = info.value.result
    assert isinstance(info.value, KeyboardInterrupt)
    assert len(result.nodes) >= 3 and result.not_sent
    assert len(result.nodes) + len(result.failures) + len(result.not_sent) == 200
    # Nothing leaked: what exists on the server is exactly what the result lists.
    assert sorted(live(cloud, "lal")) == sorted(n.extra["vm_id"] for n in result.nodes)


def test_ctrl_c_stops_sending_waits_for_the_in_flight_and_raises_with_what_was_created() -> None:
    with LocalCloud(sites=["lal"], boot_step=0.0, latency=0.05) as cloud:
        driver = make_driver(cloud)
        timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        started = time.monotonic()
        try:
            with pytest.raises(FleetInterrupted) as info:
                fleet(driver, [f"k{i}" for i in range(500)], location="lal", ex_max_in_flight=2)
        finally:
            timer.cancel()
        assert time.monotonic() - started < 15  # the whole fleet would take 25 s
        result = info.value.result
        assert result.nodes and result.not_sent
        assert sorted(live(cloud, "lal")) == sorted(n.extra["vm_id"] for n in result.nodes)


def test_a_thousand_node_fleet() -> None:
    with LocalCloud(sites=["s1", "s2", "s3", "s4"], boot_step=0.0, public_network=BIG) as cloud:
        driver = make_driver(cloud)
        names = [f"big-{i:04d}" for i in range(1000)]
        result = fleet(driver, names, location=["s1", "s2", "s3", "s4"], ex_max_in_flight=25)
        assert result.ok
        assert [n.name for n in result.nodes] == names
        assert sum(len(live(cloud, s)) for s in ("s1", "s2", "s3", "s4")) == 1000
        gone = driver.ex_destroy_nodes(result.nodes, ex_max_in_flight=25)
        assert gone.ok and len(gone.nodes) == 1000
        assert sum(len(live(cloud, s)) for s in ("s1", "s2", "s3", "s4")) == 0


@pytest.fixture
def soak_only(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long fleet run: make soak (pytest -m slow)")


@pytest.mark.slow
@pytest.mark.usefixtures("soak_only")
def test_a_thousand_node_fleet_with_latency_and_faults() -> None:
    sites = [f"s{i}" for i in range(8)]
    with LocalCloud(sites=sites, boot_step=0.01, latency=0.05, public_network=BIG) as cloud:
        driver = make_driver(cloud, ex_retries=3, timeout=2.0)
        cloud.inject_fault(
            "status_after", service="compute", op="one.vm.allocate", status=503, times=20
        )
        cloud.inject_fault("drop", service="compute", op="one.vm.allocate", times=20)
        names = [f"soak-{i:04d}" for i in range(1000)]
        result = fleet(driver, names, location=sites, ex_settle=5.0)
        assert result.ok, result.failures[:3]
        assert sum(len(live(cloud, s)) for s in sites) == 1000
        ready = driver.wait_until_running(result.nodes, wait_period=0.2, timeout=120)
        assert len(ready) == 1000
        assert driver.ex_destroy_nodes(result.nodes).ok


@pytest.mark.slow
@pytest.mark.usefixtures("soak_only")
def test_the_local_cloud_creates_ten_thousand_vms_concurrently() -> None:
    import resource

    sites = [f"s{i}" for i in range(10)]
    with LocalCloud(sites=sites, boot_step=0.0, public_network=BIG) as cloud:
        driver = make_driver(cloud)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        result = fleet(
            driver, [f"t{i:05d}" for i in range(10_000)], location=sites, ex_max_in_flight=100
        )
        elapsed = time.monotonic() - started
        grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        assert result.ok
        assert sum(len(live(cloud, s)) for s in sites) == 10_000
        assert elapsed < 120, elapsed
        assert grown_mib < 1024, grown_mib


def test_fleet_example_shows_a_progress_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fleet.py"), "--nodes", "60", "--latency", "0"],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    text = out.stdout.decode()
    assert out.returncode == 0, text + out.stderr.decode()
    # One line updated in place (carriage returns), then a newline when done.
    assert "\rcreate:  1/60  failed 0" in text and "\rcreate: 60/60  failed 0" in text
    assert "created 60 in" in text and "60 running" in text
    assert "destroyed 60; failed 0" in text
