"""Retries, counted at the local cloud: idempotent reads (``one.vmpool.info``, ``one.vm.info``,
pdisk and Marketplace GETs) are retried on connection errors, broken replies, timeouts and
502/503/504 with a bounded backoff; writes (``one.vm.allocate``, ``one.vm.action``, pdisk POST and
DELETE) are never sent twice once they may have reached the server. Retries are off unless
``ex_retries`` is given or ``LIBCLOUD_RETRY_FAILED_HTTP_REQUESTS`` (or libcloud's
``RETRY_FAILED_HTTP_REQUESTS``) is set, as in libcloud."""

from __future__ import annotations

import logging
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import CloudFactory
from libcloud.common import base as libcloud_base
from libcloud.compute.base import NodeAuthSSHKey

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver, _stratuslab
from stratuslab_libcloud.errors import (
    StratusLabConnectionError,
    StratusLabMalformedResponseError,
    StratusLabProviderError,
    StratusLabTimeoutError,
)

IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRetryKeyxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx r@t"
)


@pytest.fixture
def cloud(make_cloud: CloudFactory) -> LocalCloud:
    return make_cloud(sites=["lal"], boot_step=0.0)


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="stratuslab_libcloud")
    _stratuslab.reset_log_cache()
    return caplog


def make_driver(cloud: LocalCloud, **kwargs: Any) -> StratusLabNodeDriver:
    kwargs.setdefault("retry_delay", 0.01)
    kwargs.setdefault("timeout", 5.0)
    return StratusLabNodeDriver(ex_config_file=cloud.config_file, **kwargs)


def count(cloud: LocalCloud, service: str, op: str) -> int:
    return cloud.request_count("" if service == "marketplace" else "lal", service, op)


READS = {
    "list_nodes": ("compute", "one.vmpool.info", lambda d, n, v: d.list_nodes(ex_strict=True)),
    "ex_get_node": ("compute", "one.vm.info", lambda d, n, v: d.ex_get_node(n.id)),
    "list_volumes": ("pdisk", "GET /disks", lambda d, n, v: d.list_volumes(ex_strict=True)),
    "list_images": ("marketplace", "GET /metadata", lambda d, n, v: d.list_images()),
}
TRANSIENT = [
    ("status", {"status": 503}),
    ("status", {"status": 502}),
    ("drop", {}),
    ("reset", {}),
]


@pytest.mark.parametrize("kind,params", TRANSIENT, ids=["503", "502", "drop", "reset"])
@pytest.mark.parametrize("read", sorted(READS))
def test_reads_are_retried_until_they_succeed(
    cloud: LocalCloud, read: str, kind: str, params: dict[str, Any]
) -> None:
    driver = make_driver(cloud, ex_retries=3)
    node = driver.create_node("r", driver.list_sizes()[0], IMAGE, auth=KEY)
    volume = driver.create_volume(1, "r")
    service, op, call = READS[read]
    site = None if service == "marketplace" else "lal"
    before = count(cloud, service, op)
    cloud.inject_fault(kind, site=site, service=service, op=op, times=2, **params)
    result = call(driver, node, volume)
    assert result  # the third attempt got the real answer
    assert count(cloud, service, op) - before == 3


def test_the_retry_budget_is_bounded(cloud: LocalCloud) -> None:
    driver = make_driver(cloud, ex_retries=3)
    before = count(cloud, "compute", "one.vmpool.info")
    cloud.inject_fault("status", site="lal", service="compute", op="one.vmpool.info", status=503)
    with pytest.raises(StratusLabProviderError, match="HTTP 503") as info:
        driver.list_nodes(ex_strict=True)
    assert info.value.http_code == 503
    assert count(cloud, "compute", "one.vmpool.info") - before == 3


@pytest.mark.parametrize(
    "kind,params,error",
    [
        ("status", {"status": 500}, StratusLabProviderError),
        ("status", {"status": 403}, StratusLabProviderError),
        ("malformed", {}, StratusLabMalformedResponseError),
        ("truncated", {}, StratusLabMalformedResponseError),
    ],
    ids=["500", "403", "malformed", "truncated"],
)
def test_permanent_failures_of_reads_are_not_retried(
    cloud: LocalCloud, kind: str, params: dict[str, Any], error: type[Exception]
) -> None:
    driver = make_driver(cloud, ex_retries=3)
    before = count(cloud, "compute", "one.vmpool.info")
    cloud.inject_fault(kind, site="lal", service="compute", op="one.vmpool.info", times=1, **params)
    with pytest.raises(error):
        driver.list_nodes(ex_strict=True)
    assert count(cloud, "compute", "one.vmpool.info") - before == 1


# create_node is not here: it is exactly-once with client tokens (tests/test_client_tokens.py),
# and sends its allocate again, with retries on, when the first certainly created nothing.
WRITES = {
    "destroy_node": ("compute", "one.vm.action"),
    "create_volume": ("pdisk", "POST /disks"),
    "destroy_volume": ("pdisk", "DELETE /disks"),
}


@pytest.mark.parametrize(
    "kind,params",
    [*TRANSIENT, ("slow", {"seconds": 2.5})],
    ids=["503", "502", "drop", "reset", "slow"],
)
@pytest.mark.parametrize("write", sorted(WRITES))
def test_writes_are_sent_once(
    cloud: LocalCloud,
    write: str,
    kind: str,
    params: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIBCLOUD_RETRY_FAILED_HTTP_REQUESTS", "1")
    driver = make_driver(cloud, ex_retries=5, timeout=1.0)
    node = driver.create_node("w", driver.list_sizes()[0], IMAGE, auth=KEY)
    volume = driver.create_volume(1, "w")
    service, op = WRITES[write]
    vms_before = set(cloud.vm_ids("lal"))
    disks_before = {d["uuid"] for d in cloud.disks("lal")}
    before = count(cloud, service, op)
    cloud.inject_fault(kind, site="lal", service=service, op=op, times=1, **params)
    call = {
        "destroy_node": lambda: driver.destroy_node(node),
        "create_volume": lambda: driver.create_volume(1, "w2"),
        "destroy_volume": lambda: driver.destroy_volume(volume),
    }[write]
    with pytest.raises(
        (StratusLabProviderError, StratusLabConnectionError, StratusLabTimeoutError)
    ) as info:
        call()
    if kind in ("drop", "reset"):
        assert "may have been carried out" in str(info.value)
    assert count(cloud, service, op) - before == 1
    new_vms = set(cloud.vm_ids("lal")) - vms_before
    new_disks = {d["uuid"] for d in cloud.disks("lal")} - disks_before
    # A status fault is answered before the server acts; a reset after (one VM/disk, not two).
    reached = kind == "reset"
    assert len(new_vms) == (1 if write == "create_node" and reached else 0)
    assert len(new_disks) == (1 if write == "create_volume" and reached else 0)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_write_is_retried_only_when_the_connection_could_not_be_opened(
    tmp_path: Path, debug_log: pytest.LogCaptureFixture
) -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    cfg = tmp_path / "dead.cfg"
    cfg.write_text(
        "[default]\nusername = alice\npassword = pw\n"
        f"endpoint = {base}/x/one-proxy/xmlrpc\npdisk_endpoint = {base}/x/pdisk\n"
    )
    cfg.chmod(0o600)
    driver = StratusLabNodeDriver(ex_config_file=cfg, ex_retries=3, retry_delay=0.01)
    with pytest.raises(StratusLabConnectionError, match="cannot connect") as info:
        driver.create_volume(1, "never-sent")
    assert "may have been carried out" not in str(info.value)
    retries = [r.getMessage() for r in debug_log.records if "retrying POST" in r.getMessage()]
    assert [re.sub(r".*\(attempt (\d) of (\d)\).*", r"\1/\2", m) for m in retries] == ["2/3", "3/3"]


def test_backoff_delays_grow_and_are_logged(
    cloud: LocalCloud, debug_log: pytest.LogCaptureFixture
) -> None:
    driver = make_driver(cloud, ex_retries=4, retry_delay=0.1, backoff=2.0)
    cloud.inject_fault(
        "status", site="lal", service="compute", op="one.vmpool.info", status=503, times=3
    )
    started = time.monotonic()
    driver.list_nodes(ex_strict=True)
    elapsed = time.monotonic() - started
    assert 0.7 <= elapsed < 0.7 + 1.0  # 0.1 + 0.2 + 0.4
    waits = [
        re.search(r"attempt (\d) of 4\) in ([\d.]+) s", r.getMessage())
        for r in debug_log.records
        if "retrying" in r.getMessage()
    ]
    assert [(m.group(1), m.group(2)) for m in waits if m] == [
        ("2", "0.10"),
        ("3", "0.20"),
        ("4", "0.40"),
    ]


def test_a_timed_out_read_is_retried_within_its_budget(cloud: LocalCloud) -> None:
    driver = make_driver(cloud, ex_retries=2, timeout=0.5, retry_delay=0.05)
    before = count(cloud, "compute", "one.vmpool.info")
    cloud.inject_fault(
        "slow", site="lal", service="compute", op="one.vmpool.info", seconds=3.0, times=1
    )
    started = time.monotonic()
    assert driver.list_nodes(ex_strict=True) == []
    assert time.monotonic() - started < 2 * 0.5 + 0.05 + 1.0
    assert count(cloud, "compute", "one.vmpool.info") - before == 2


@pytest.mark.parametrize("setting", ["env", "libcloud", "none", "explicit-1"])
def test_retries_follow_libclouds_switch(
    cloud: LocalCloud, setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs: dict[str, Any] = {}
    if setting == "env":
        monkeypatch.setenv("LIBCLOUD_RETRY_FAILED_HTTP_REQUESTS", "1")
    elif setting == "libcloud":
        monkeypatch.setattr(libcloud_base, "RETRY_FAILED_HTTP_REQUESTS", True)
    elif setting == "explicit-1":
        monkeypatch.setenv("LIBCLOUD_RETRY_FAILED_HTTP_REQUESTS", "1")
        kwargs["ex_retries"] = 1
    driver = make_driver(cloud, **kwargs)
    before = count(cloud, "compute", "one.vmpool.info")
    cloud.inject_fault("status", site="lal", service="compute", op="one.vmpool.info", status=503)
    with pytest.raises(StratusLabProviderError):
        driver.list_nodes(ex_strict=True)
    expected = {"env": 3, "libcloud": 3, "none": 1, "explicit-1": 1}[setting]
    assert count(cloud, "compute", "one.vmpool.info") - before == expected
