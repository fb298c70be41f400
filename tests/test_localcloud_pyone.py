"""The local cloud driven by ``pyone``, OpenNebula's official Python client, unmodified.

pyone (7.x here) targets OpenNebula 5-7, but only needs, from the methods used here, the
three-element reply head ``[ok, value, code]`` (it reads elements 0-2 and ignores the 5.x
extras) and documents it can bind with its generated (generateDS) classes, which accept the
3.8 VM documents: unknown elements are skipped, missing ones are ``None``. So the combination
that works is *any* version knob with ``pyone.OneServer(<site>/RPC2, session="user:password")``;
the tests run it against the 3.8 (default) and 5.x knobs. Action names follow the knob
(``shutdown``/``finalize`` up to 3.8, ``terminate``/``terminate-hard`` from 5.x).

Known limit: pyone turns a ``dict`` template into XML (``<TEMPLATE>…``); oned accepts either form
(``Template::parse_str_or_xml``), the local cloud only the text form — pass a string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyone
import pytest
from helpers import FIXTURES, wait_for

from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER, LocalCloud

TEMPLATE_1 = (FIXTURES / "opennebula-3.8.5" / "vm-template-1.txt").read_text(encoding="utf-8")
SESSION = f"{DEFAULT_USER}:{DEFAULT_PASSWORD}"
# How each knob stops and kills a VM.
ACTIONS = {"3.8": ("shutdown", "finalize"), "5.x": ("terminate", "terminate-hard")}


@pytest.fixture(params=["3.8", "5.x"])
def knob_cloud(request: pytest.FixtureRequest) -> Iterator[tuple[str, LocalCloud]]:
    with LocalCloud(["lal"], version=request.param, boot_step=0.01) as cloud:
        yield request.param, cloud


def one(cloud: LocalCloud, session: str = SESSION) -> pyone.OneServerXRPC:
    return pyone.OneServer(cloud.endpoints("lal")["rpc2"], session=session)


def test_allocate_info_pool_action(knob_cloud: tuple[str, LocalCloud]) -> None:
    version, cloud = knob_cloud
    server = one(cloud)
    vm_id = server.vm.allocate(TEMPLATE_1)
    assert vm_id == 0
    wait_for(lambda: server.vm.info(vm_id).LCM_STATE == 3, what="RUNNING")

    vm = server.vm.info(vm_id)
    assert (vm.ID, vm.UID, vm.UNAME, vm.GNAME, vm.NAME) == (0, 1, "alice", "users", "probe-vm-1")
    assert (vm.STATE, vm.LCM_STATE) == (3, 3)
    assert vm.STIME > 0
    assert vm.ETIME == 0
    # pyone turns TEMPLATE into a dict; the capture's template comes back expanded.
    template = vm.TEMPLATE
    assert template["NAME"] == "probe-vm-1"
    assert template["CPU"] == "0.5"
    assert template["MEMORY"] == "256"
    assert template["CONTEXT"]["HOSTNAME"] == "probe-vm-1"
    assert template["CONTEXT"]["IP_PUBLIC"] == template["NIC"]["IP"]
    assert template["NIC"]["NETWORK"] == "public"
    assert [d["TARGET"] for d in template["DISK"]] == ["hda", "hdb"]
    assert template["DISK"][0]["IMAGE"] == "ttylinux"
    history = vm.HISTORY_RECORDS.HISTORY
    assert len(history) == 1
    assert history[0].HOSTNAME == "node-1.lal.localcloud"
    assert history[0].SEQ == 0

    pool = server.vmpool.info(-2, -1, -1, -1)
    assert [v.ID for v in pool.VM] == [0]
    assert pool.VM[0].NAME == "probe-vm-1"
    assert [v.ID for v in server.vmpool.info(-3, -1, -1, -1).VM] == [0]

    stop, kill = ACTIONS[version]
    assert server.vm.action(stop, vm_id) == vm_id
    wait_for(lambda: server.vm.info(vm_id).STATE == 6, what="DONE")
    assert server.vmpool.info(-2, -1, -1, -1).VM == []
    assert [v.ID for v in server.vmpool.info(-2, -1, -1, -2).VM] == [0]
    assert [v.ID for v in server.vmpool.info(-2, -1, -1, 6).VM] == [0]

    second = server.vm.allocate(TEMPLATE_1)
    assert second == 1
    wait_for(lambda: server.vm.info(second).LCM_STATE == 3, what="RUNNING")
    assert server.vm.action(kill, second) == second
    wait_for(lambda: server.vm.info(second).STATE == 6, what="killed")


def test_errors_become_pyone_exceptions(knob_cloud: tuple[str, LocalCloud]) -> None:
    version, cloud = knob_cloud
    server = one(cloud)
    prefix = "one.vm" if version == "5.x" else "VirtualMachine"

    with pytest.raises(pyone.OneNoExistsException) as no_vm:
        server.vm.info(99)
    name = "one.vm.info" if version == "5.x" else "VirtualMachineInfo"
    assert str(no_vm.value) == f"[{name}] Error getting virtual machine [99]."

    with pytest.raises(pyone.OneAuthenticationException) as auth:
        one(cloud, f"{DEFAULT_USER}:wrong").vmpool.info(-2, -1, -1, -1)
    pool_name = "one.vmpool.info" if version == "5.x" else "VirtualMachinePoolInfo"
    assert str(auth.value) == f"[{pool_name}] User couldn't be authenticated, aborting call."

    with pytest.raises(pyone.OneInternalException) as syntax:
        server.vm.allocate('NAME = "x"\nDISK = [ broken')
    assert "Error allocating a new virtual machine. Parse error: syntax error" in str(syntax.value)
    assert str(syntax.value).startswith("[" + ("one.vm.allocate" if version == "5.x" else prefix))

    vm_id = server.vm.allocate(TEMPLATE_1)
    wait_for(lambda: server.vm.info(vm_id).LCM_STATE == 3, what="RUNNING")
    # An action the knob does not know: 8192 INTERNAL on 3.8, 2048 ACTION on 5.x.
    expected = pyone.OneActionException if version == "5.x" else pyone.OneInternalException
    with pytest.raises(expected):
        server.vm.action("nonsense", vm_id)
    with pytest.raises(pyone.OneActionException):
        server.vm.action("resume", vm_id)  # wrong state: RUNNING

    # XML-RPC faults come through as plain OneException with the fault text.
    with pytest.raises(pyone.OneException) as fault:
        server.vm.info("0")
    assert str(fault.value) == "<Fault -501: 'Parameter that is supposed to be integer is not'>"
    with pytest.raises(pyone.OneException) as unknown:
        server.vm.nosuchmethod(1)
    assert str(unknown.value) == "<Fault -506: \"Method 'one.vm.nosuchmethod' not defined\">"


def test_other_users_vms_raise_authorization_errors() -> None:
    users = {"alice": "a-pw", "bob": "b-pw"}
    with LocalCloud(["lal"], users=users, boot_step=0) as cloud:
        alice = one(cloud, "alice:a-pw")
        bob = one(cloud, "bob:b-pw")
        vm_id = alice.vm.allocate(TEMPLATE_1)
        with pytest.raises(pyone.OneAuthorizationException) as err:
            bob.vm.action("finalize", vm_id)
        assert str(err.value) == (
            f"[VirtualMachineAction] User [2] : Not authorized to perform MANAGE VM [{vm_id}]."
        )
        assert bob.vmpool.info(-2, -1, -1, -1).VM == []
        assert [v.ID for v in alice.vmpool.info(-2, -1, -1, -1).VM] == [vm_id]


def test_pyone_over_tls_with_the_generated_ca() -> None:
    with LocalCloud(["lal"], tls=True, boot_step=0) as cloud:
        url = cloud.endpoints("lal")["rpc2"]
        assert url.startswith("https://")
        # pyone's https_verify goes to requests' verify: a CA bundle path works.
        server = pyone.OneServer(url, session=SESSION, https_verify=cloud.ca_file)
        vm_id = server.vm.allocate(TEMPLATE_1)
        host = server.vm.info(vm_id).HISTORY_RECORDS.HISTORY[0].HOSTNAME
        assert re.fullmatch(r"node-\d\.lal\.localcloud", host)
