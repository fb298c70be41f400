"""Exactly-once ``create_node`` (README "Exactly-once creation"): every create carries a client
token; a lost reply is resolved by looking the token up, never by a blind second allocate.

The fault matrix (RELIABILITY.md R9) is counted on the server: after each case, the live VMs of
the local cloud carrying the node's token are counted.

===================  ========================  =======================  =======================
fault on allocate    what the server did       retries on (3)           retries off
===================  ========================  =======================  =======================
drop                 nothing (closed)          sent again: 1 VM         error naming the token
http503              nothing (503)             sent again: 1 VM         error naming the token
drop_after           acted, closed             found: 1 VM, sent once   found: 1 VM
reset                acted, reset mid-reply    found: 1 VM, sent once   found: 1 VM
truncated            acted, reply cut          found: 1 VM, sent once   found: 1 VM
http503_after        acted, then 503           found: 1 VM, sent once   found: 1 VM
timeout_late         acts 1.5 s later          waits (settle): 1 VM,    waits: 1 VM, sent once
                     (in flight)               sent once
timeout_never        nothing (gave up)         settle, sent again: 1 VM error naming the token
===================  ========================  =======================  =======================
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import pytest
from conftest import CloudFactory
from helpers import wait_for
from libcloud.compute.base import Node, NodeAuthSSHKey

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
from stratuslab_libcloud.errors import (
    StratusLabConnectionError,
    StratusLabMalformedResponseError,
    StratusLabProviderError,
    StratusLabTimeoutError,
)

IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITokenKeyxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx t@k"
)
TIMEOUT = 1.0
SITE = "lal"
DONE = 6


@pytest.fixture(params=["3.8", "5.x"])
def cloud(request: pytest.FixtureRequest, make_cloud: CloudFactory) -> LocalCloud:
    return make_cloud(sites=[SITE], boot_step=0.0, version=request.param)


def make_driver(cloud: LocalCloud, retries: bool) -> StratusLabNodeDriver:
    return StratusLabNodeDriver(
        ex_config_file=cloud.config_file,
        timeout=TIMEOUT,
        retry_delay=0.01,
        ex_retries=3 if retries else 1,
    )


def live_with_token(cloud: LocalCloud, token: str) -> list[int]:
    """The live VMs of the site whose allocate template carries ``token`` (counted on the
    server)."""
    out = []
    for vm in cloud.vm_ids(SITE):
        state = cloud.vm_state(SITE, vm)
        template = cloud.vm_template(SITE, vm) or ""
        if state is not None and state[0] != DONE and f'"{token}"' in template:
            out.append(vm)
    return out


def allocates(cloud: LocalCloud) -> int:
    return cloud.request_count(SITE, "compute", "one.vm.allocate")


def create(driver: StratusLabNodeDriver, token: str, settle: float = 3.0) -> Node:
    return driver.create_node(
        "tok",
        driver.list_sizes()[0],
        IMAGE,
        location=SITE,
        auth=KEY,
        ex_client_token=token,
        ex_settle=settle,
    )


# (name, inject_fault kind and parameters, acted before the reply was lost)
FAULTS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("drop", "drop", {}, False),
    ("http503", "status", {"status": 503}, False),
    ("drop_after", "drop_after", {}, True),
    ("reset", "reset", {}, True),
    ("truncated", "truncated", {}, True),
    ("http503_after", "status_after", {"status": 503}, True),
    ("timeout_late", "late", {"seconds": TIMEOUT + 0.5}, True),
    ("timeout_never", "slow", {"seconds": TIMEOUT + 2}, False),
]


# The error a create that gave up raises: the cause's own type.
WANTED: dict[str, type[Exception]] = {
    "drop": StratusLabConnectionError,
    "http503": StratusLabProviderError,
    "timeout_never": StratusLabTimeoutError,
}
_ = StratusLabMalformedResponseError  # (truncated replies are found, never raised)


@pytest.mark.parametrize("retries", [True, False], ids=["retries", "no-retries"])
@pytest.mark.parametrize(("name", "kind", "params", "acted"), FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_matrix_create_node(
    cloud: LocalCloud, name: str, kind: str, params: dict[str, Any], acted: bool, retries: bool
) -> None:
    driver = make_driver(cloud, retries)
    token = f"r9-{name}-{int(retries)}"
    cloud.inject_fault(kind, site=SITE, service="compute", op="one.vm.allocate", times=1, **params)
    settle = 3.0 if name == "timeout_late" else 0.3
    if acted or retries:
        node = create(driver, token, settle)
        assert node.extra["client_token"] == token
        assert live_with_token(cloud, token) == [node.extra["vm_id"]]
        # Sent again only when the first allocate had certainly created nothing.
        assert allocates(cloud) == (1 if acted else 2)
    else:
        with pytest.raises(WANTED[name]) as info:
            create(driver, token, settle)
        message = str(info.value)
        assert token in message and "ex_client_token" in message, message
        assert "site 'lal'" in message and "create_node" in message
        assert len(message) < 1000
        assert live_with_token(cloud, token) == []
        assert allocates(cloud) == 1


def test_the_same_token_returns_the_same_node(cloud: LocalCloud) -> None:
    driver = make_driver(cloud, retries=False)
    first = create(driver, "job-7:node-1")
    # A second process (a restart after a crash) with the same token.
    again = create(make_driver(cloud, retries=False), "job-7:node-1")
    assert again.id == first.id
    assert allocates(cloud) == 1
    assert live_with_token(cloud, "job-7:node-1") == [first.extra["vm_id"]]
    assert driver.ex_get_node(first.id).extra["client_token"] == "job-7:node-1"
    assert {n.extra.get("client_token") for n in driver.list_nodes()} == {"job-7:node-1"}


def test_a_fresh_token_is_made_for_every_create(cloud: LocalCloud) -> None:
    driver = make_driver(cloud, retries=False)
    size = driver.list_sizes()[0]
    a = driver.create_node("a", size, IMAGE, auth=KEY)
    b = driver.create_node("b", size, IMAGE, auth=KEY)
    assert a.extra["client_token"] and b.extra["client_token"]
    assert a.extra["client_token"] != b.extra["client_token"]


def test_after_giving_up_the_same_token_returns_the_vm_that_appeared(cloud: LocalCloud) -> None:
    driver = make_driver(cloud, retries=False)
    cloud.inject_fault(
        "late", site=SITE, service="compute", op="one.vm.allocate", times=1, seconds=TIMEOUT + 0.5
    )
    with pytest.raises(StratusLabTimeoutError, match="late-1") as info:
        create(driver, "late-1", settle=0)
    assert "no reply within" in str(info.value)
    vms = wait_for(lambda: live_with_token(cloud, "late-1"), what="the late VM")
    node = create(driver, "late-1")
    assert [node.extra["vm_id"]] == vms
    assert allocates(cloud) == 1


def test_two_vms_with_one_token_are_reduced_to_the_oldest(cloud: LocalCloud) -> None:
    driver = make_driver(cloud, retries=False)
    first = create(driver, "dup-1")
    # A duplicate the driver did not make (another client's blind retry): same template.
    template = cloud.vm_template(SITE, first.extra["vm_id"])
    session = f"{next(iter(cloud.users))}:{next(iter(cloud.users.values()))}"
    proxy = xmlrpc.client.ServerProxy(cloud.endpoints(SITE)["rpc2"])
    ok, younger, _ = proxy.one.vm.allocate(session, template)  # type: ignore[misc]
    assert ok
    assert sorted(live_with_token(cloud, "dup-1")) == sorted([first.extra["vm_id"], younger])
    again = create(driver, "dup-1")
    assert again.id == first.id
    assert live_with_token(cloud, "dup-1") == [first.extra["vm_id"]]


@pytest.mark.parametrize("token", ["", "a b", 'x"y', "é", "x" * 129])
def test_bad_tokens_are_refused_before_anything_is_sent(cloud: LocalCloud, token: str) -> None:
    driver = make_driver(cloud, retries=False)
    with pytest.raises(ValueError, match="client token"):
        create(driver, token)
    assert allocates(cloud) == 0


def test_settle_must_be_a_non_negative_number(cloud: LocalCloud) -> None:
    driver = make_driver(cloud, retries=False)
    with pytest.raises(ValueError, match="ex_settle"):
        create(driver, "s", settle=-1)
    with pytest.raises(TypeError, match="ex_settle"):
        create(driver, "s", settle="1")  # type: ignore[arg-type]
