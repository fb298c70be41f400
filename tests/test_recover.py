"""``ex_recover`` (``one.vm.recover``) end to end on a local cloud mixing a StratusLab 3.8 site
and a plain OpenNebula 7.4 site, against the 7.4 emulator's rules as the captures show them
(``tests/fixtures/opennebula-7.4.0/more/``: ops 0-2 on RUNNING and 3 on DONE accepted as no-ops,
wrong-state, authorization and unknown-code refusals), sync and asyncio."""

from __future__ import annotations

import asyncio

import pytest
from conftest import CloudFactory
from helpers import wait_for
from libcloud.compute.base import Node, NodeAuthSSHKey
from libcloud.compute.types import NodeState

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
from stratuslab_libcloud.errors import (
    StratusLabNotFoundError,
    StratusLabProviderError,
    StratusLabStateError,
    StratusLabUnsupportedError,
)
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

ADMIN_PASSWORD = "oneadmin-local-password"


@pytest.fixture
def cloud(make_cloud: CloudFactory) -> LocalCloud:
    options = {"one": {"version": "7.4", "site_type": "opennebula"}}
    users = {"oneadmin": ADMIN_PASSWORD, DEFAULT_USER: DEFAULT_PASSWORD}
    return make_cloud(["lal", "one"], site_options=options, users=users, boot_step=0.01)


@pytest.fixture
def admin(cloud: LocalCloud) -> StratusLabNodeDriver:
    # The configuration file names the first user: oneadmin, whose group may recover.
    return StratusLabNodeDriver(ex_config_file=cloud.config_file)


def boot(driver: StratusLabNodeDriver, key: str, name: str = "stuck") -> Node:
    size = next(s for s in driver.list_sizes() if s.id == "m1.small")
    node = driver.create_node(
        name, size, "image-0@one", location="one", auth=NodeAuthSSHKey(key), ex_network="public"
    )
    driver.wait_until_running([node], wait_period=0.02, timeout=10)
    return node


def state(driver: StratusLabNodeDriver, node: Node) -> NodeState:
    return driver.ex_get_node(node.id).state


def test_recover_operations_and_refusals(
    cloud: LocalCloud, admin: StratusLabNodeDriver, ssh_public_key: str
) -> None:
    node = boot(admin, ssh_public_key)
    # failure / success / retry on a RUNNING VM: accepted, nothing changes.
    for operation in ("failure", "success", "retry"):
        assert admin.ex_recover(node, operation)
        assert state(admin, node) == NodeState.RUNNING
    assert admin.stop_node(node)
    wait_for(lambda: state(admin, node) == NodeState.STOPPED, what="powered off")
    with pytest.raises(StratusLabStateError, match="wrong state POWEROFF") as refused:
        admin.ex_recover(node, "failure")
    assert refused.value.operation == "ex_recover (one.vm.recover failure)"
    assert refused.value.site == "one"
    with pytest.raises(StratusLabStateError, match="Could not perform a retry"):
        admin.ex_recover(node, "retry")
    # delete-recreate: the same VM back through PENDING to RUNNING.
    assert admin.ex_recover(node, "delete-recreate")
    wait_for(lambda: state(admin, node) == NodeState.RUNNING, what="recreated")
    assert [n.id for n in admin.list_nodes(ex_location="one")] == [node.id]
    assert admin.ex_recover(node, "delete")
    wait_for(lambda: admin.list_nodes(ex_location="one") == [], what="deleted")
    # On a DONE VM the daemon accepts delete (a no-op) and refuses the others.
    assert admin.ex_recover(node, "delete")
    with pytest.raises(StratusLabStateError, match="wrong state DONE"):
        admin.ex_recover(node, "success")
    with pytest.raises(StratusLabStateError, match="Cannot delete-recreate a VM already in DONE"):
        admin.ex_recover(node, "delete-recreate")
    with pytest.raises(StratusLabNotFoundError, match="999"):
        admin.ex_recover("999@one", "delete")
    # Bad names are refused before anything is sent.
    before = cloud.request_count("one", "compute")
    with pytest.raises(ValueError, match='unknown recover operation "resubmit"'):
        admin.ex_recover(node, "resubmit")
    with pytest.raises(TypeError):
        admin.ex_recover(node, 3)  # type: ignore[arg-type]
    assert cloud.request_count("one", "compute") == before


def test_recover_delete_db_and_asyncio(admin: StratusLabNodeDriver, ssh_public_key: str) -> None:
    node = boot(admin, ssh_public_key, "by-asyncio")

    async def recover() -> bool:
        return await admin.ex_async.ex_recover(node, "delete-db")

    assert asyncio.run(recover())
    wait_for(lambda: admin.list_nodes(ex_location="one") == [], what="deleted from the DB")
    with pytest.raises(StratusLabStateError, match="wrong state DONE"):
        asyncio.run(admin.ex_async.ex_recover(node, "failure"))


def test_recover_needs_oneadmin_group_and_version(
    cloud: LocalCloud, admin: StratusLabNodeDriver, ssh_public_key: str
) -> None:
    node = boot(admin, ssh_public_key)
    url = cloud.endpoints("one")["rpc2"]
    alice = StratusLabNodeDriver(
        DEFAULT_USER, DEFAULT_PASSWORD, host=url, ex_site_type="opennebula"
    )
    with pytest.raises(StratusLabProviderError, match="Not authorized to perform ADMIN") as e:
        alice.ex_recover(f"{node.id.split('@')[0]}@default", "delete")
    assert not isinstance(e.value, StratusLabStateError)
    # OpenNebula 3.8 (the StratusLab site) has no one.vm.recover: refused before it is sent.
    with pytest.raises(StratusLabUnsupportedError, match=r"OpenNebula 3\.8.*from 4\.2"):
        admin.ex_recover("0@lal", "failure")
    assert state(admin, node) == NodeState.RUNNING
