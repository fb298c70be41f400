"""The local cloud's compute service driven by Python's own ``xmlrpc.client`` (an independent
client: nothing of this package is on the request path).

Replies are compared with the real OpenNebula 3.8.5 captures (tests/fixtures/opennebula-3.8.5/,
tests/fixtures/opennebula-3.8.5-calllog/) exactly, modulo ids, timestamps and the names the
emulator necessarily chooses differently (hypervisor host, network name).
"""

from __future__ import annotations

import ast
import json
import re
import ssl
import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import FIXTURES, wait_for

from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER, LocalCloud

CAPTURES = FIXTURES / "opennebula-3.8.5"
CALL_LOG = FIXTURES / "opennebula-3.8.5-calllog" / "call-log.json"
TEMPLATE_1 = (CAPTURES / "vm-template-1.txt").read_text(encoding="utf-8")
NO_NIC = "\n".join(line for line in TEMPLATE_1.splitlines() if not line.startswith("NIC"))
SESSION = f"{DEFAULT_USER}:{DEFAULT_PASSWORD}"
# The capture's session: a cloud with this user replays the call log with identical parameters.
ONEADMIN = {"oneadmin": "password"}
ONEADMIN_SESSION = "oneadmin:password"
AUTH_REALM = 'Basic realm="StratusLab Password Realm"'

# (STATE, LCM_STATE) of the states action-errors.txt names.
PENDING, HOLD, RUNNING, STOPPED, SUSPENDED, DONE, POWEROFF = (
    (1, 0),
    (2, 0),
    (3, 3),
    (4, 0),
    (5, 0),
    (6, 0),
    (8, 0),
)


def proxy_url(cloud: LocalCloud, site: str, user: str, password: str) -> str:
    """The one-proxy password URL with credentials in the userinfo (xmlrpc.client sends them as
    a preemptive ``Authorization: Basic``), as the StratusLab client builds it."""
    compute = cloud.endpoints(site)["compute"]
    assert compute.endswith("/one-proxy/xmlrpc")
    scheme, rest = compute[: -len("xmlrpc")].split("://", 1)
    return f"{scheme}://{user}:{password}@{rest}pswd/xmlrpc"


def rpc2(cloud: LocalCloud, site: str = "lal") -> Any:
    return xmlrpc.client.ServerProxy(cloud.endpoints(site)["rpc2"])


def captured(name: str) -> str:
    return (CAPTURES / name).read_text(encoding="utf-8")


_TIMES = re.compile(
    r"<(LAST_POLL|STIME|ETIME|PSTIME|PETIME|RSTIME|RETIME|ESTIME|EETIME)>[1-9][0-9]*</"
)


def normalise(doc: str) -> str:
    """Blanks non-zero timestamps (zero stays meaningful) and the names a local cloud chooses
    itself: the hypervisor host (``dummyhost`` in the capture) and the leased network's name."""
    doc = _TIMES.sub(r"<\1>T</", doc)
    doc = re.sub(r"<HOSTNAME>[^<]*</HOSTNAME>", "<HOSTNAME>H</HOSTNAME>", doc)
    doc = re.sub(r"<DEPLOY_ID>[^:<]*:", "<DEPLOY_ID>H:", doc)
    return doc.replace("<![CDATA[stratus-priv]]>", "<![CDATA[public]]>")


@pytest.fixture
def capture_cloud() -> Iterator[LocalCloud]:
    """A site shaped like the capture's: user oneadmin/password, the public network leasing
    from 192.168.100.1 (the capture's network 0), lifecycle steps applied at once."""
    with LocalCloud(
        ["lal"], users=ONEADMIN, boot_step=0, public_network=("192.168.100.1", 100)
    ) as cloud:
        yield cloud


@pytest.fixture
def frozen_cloud() -> Iterator[LocalCloud]:
    """Like ``capture_cloud`` but VMs stay PENDING (an hour per lifecycle step)."""
    with LocalCloud(
        ["lal"], users=ONEADMIN, boot_step=3600, public_network=("192.168.100.1", 100)
    ) as cloud:
        yield cloud


# --------------------------------------------------------------------------- version, auth


def test_system_version_on_every_compute_path(cloud: LocalCloud) -> None:
    expected = ast.literal_eval(
        (FIXTURES / "localcloud/opennebula-3.8.5/system-version.txt").read_text()
    )
    assert expected == [True, "3.8.5", 0]
    for site in ("lal", "grnet"):
        proxy = xmlrpc.client.ServerProxy(proxy_url(cloud, site, DEFAULT_USER, DEFAULT_PASSWORD))
        # The proxy replaces whatever session the client sends.
        assert proxy.one.system.version("dummy:pass") == expected
        assert rpc2(cloud, site).one.system.version(SESSION) == expected


@pytest.mark.parametrize(
    ("version", "reply"),
    [
        ("3.8", [True, "3.8.5", 0]),
        ("4.x", [True, "4.14.2", 0]),
        ("5.x", [True, "5.12.0", 0]),
    ],
)
def test_version_knob_sets_the_reported_version(version: str, reply: list[Any]) -> None:
    with LocalCloud(["lal"], version=version) as cloud:
        assert rpc2(cloud).one.system.version(SESSION) == reply


def test_opennebula_3_2_has_no_system_version() -> None:
    with LocalCloud(["lal"], version="3.2") as cloud, pytest.raises(xmlrpc.client.Fault) as err:
        rpc2(cloud).one.system.version(SESSION)
    assert (err.value.faultCode, err.value.faultString) == (
        -506,
        "Method 'one.system.version' not defined",
    )


def test_direct_rpc2_with_a_wrong_session_is_error_256(cloud: LocalCloud) -> None:
    expected = ast.literal_eval(
        (FIXTURES / "localcloud/opennebula-3.8.5/auth-error.txt").read_text()
    )
    assert rpc2(cloud).one.system.version(f"{DEFAULT_USER}:wrong") == expected
    assert rpc2(cloud).one.vm.info("nobody:x", 0) == [
        False,
        "[VirtualMachineInfo] User couldn't be authenticated, aborting call.",
        256,
    ]
    assert rpc2(cloud).one.vmpool.info("no-colon", -2, -1, -1, -1) == [
        False,
        "[VirtualMachinePoolInfo] User couldn't be authenticated, aborting call.",
        256,
    ]


@pytest.mark.parametrize(
    ("user", "password"),
    [(DEFAULT_USER, "wrong-password"), ("mallory", DEFAULT_PASSWORD), ("", "")],
)
def test_proxy_path_refuses_bad_credentials_with_http_401(
    cloud: LocalCloud, user: str, password: str
) -> None:
    url = (
        proxy_url(cloud, "lal", user, password)
        if user
        else cloud.endpoints("lal")["compute"].replace("/xmlrpc", "/pswd/xmlrpc")
    )
    proxy = xmlrpc.client.ServerProxy(url)
    with pytest.raises(xmlrpc.client.ProtocolError) as err:
        proxy.one.system.version("dummy:pass")
    assert err.value.errcode == 401
    assert err.value.errmsg == "Unauthorized"
    assert err.value.headers["WWW-Authenticate"] == AUTH_REALM
    assert cloud.request_count("lal", "compute", "one.system.version") == 1


def test_certificate_path_without_tls_is_403(cloud: LocalCloud) -> None:
    url = cloud.endpoints("lal")["compute"].replace("/xmlrpc", "/cert/xmlrpc")
    with pytest.raises(xmlrpc.client.ProtocolError) as err:
        xmlrpc.client.ServerProxy(url).one.system.version("dummy:pass")
    assert err.value.errcode == 403


def test_unknown_site_and_wrong_verb(cloud: LocalCloud) -> None:
    url = cloud.endpoints("lal")["rpc2"].replace("/lal/", "/nowhere/")
    with pytest.raises(xmlrpc.client.ProtocolError) as err:
        xmlrpc.client.ServerProxy(url).one.system.version(SESSION)
    assert err.value.errcode == 404


def test_proxy_replaces_the_session_with_the_authenticated_user(cloud: LocalCloud) -> None:
    proxy = xmlrpc.client.ServerProxy(proxy_url(cloud, "lal", DEFAULT_USER, DEFAULT_PASSWORD))
    ok, vm_id, code = proxy.one.vm.allocate("dummy:pass", TEMPLATE_1)
    assert (ok, code) == (True, 0)
    # The VM belongs to alice (uid 1, group users) whatever session string was sent, and
    # direct oned calls as alice see it.
    ok, doc, _ = rpc2(cloud).one.vm.info(SESSION, vm_id)
    assert ok
    assert "<UID>1</UID><GID>1</GID><UNAME>alice</UNAME><GNAME>users</GNAME>" in doc


# --------------------------------------------------------------------------- call-log replay

# Calls of the real log whose reply does not depend on VM state or ids.
REPLAYABLE = {
    "one.system.version",
    "one.vm.allocate",
    "one.vm.info",
    "one.vm.action",
    "one.vmpool.info",
    "one.vm.nosuchmethod",
}


def _error_calls() -> list[dict[str, Any]]:
    log = json.loads(CALL_LOG.read_text(encoding="utf-8"))
    calls = []
    for call in log:
        response = call["response"]
        failed = isinstance(response, dict) or response[0] is False
        # Action refusals depend on the VM's state then; those are test_action_replies_*.
        stateful = (
            call["method"] == "one.vm.action"
            and call["params"][2] != 9999
            and not (isinstance(response, dict))
        )
        if call["method"] in REPLAYABLE and failed and not stateful:
            calls.append(call)
    return calls


ERROR_CALLS = _error_calls()


def test_the_call_log_holds_the_expected_error_calls() -> None:
    assert [c["method"] for c in ERROR_CALLS] == [
        "one.system.version",
        "one.vm.allocate",
        "one.vm.info",
        "one.vm.info",
        "one.vm.action",
        "one.vm.action",
        "one.vm.allocate",
        "one.vm.allocate",
        "one.vm.allocate",
        "one.vm.nosuchmethod",
        "one.vmpool.info",
    ]


@pytest.mark.parametrize(
    "call", ERROR_CALLS, ids=[f"{c['method']}-{i}" for i, c in enumerate(ERROR_CALLS)]
)
def test_every_error_of_the_call_log_replays_identically(
    capture_cloud: LocalCloud, call: dict[str, Any]
) -> None:
    proxy = rpc2(capture_cloud)
    # A VM 0 exists, as in the capture.
    assert proxy.one.vm.allocate(ONEADMIN_SESSION, TEMPLATE_1) == [True, 0, 0]
    method = getattr(proxy, call["method"])
    expected = call["response"]
    if isinstance(expected, dict):
        with pytest.raises(xmlrpc.client.Fault) as err:
            method(*call["params"])
        assert {"fault": err.value.faultCode, "faultString": err.value.faultString} == expected
    else:
        assert method(*call["params"]) == expected


# --------------------------------------------------------------------------- documents


def test_allocate_then_info_equals_the_pending_capture(frozen_cloud: LocalCloud) -> None:
    proxy = rpc2(frozen_cloud)
    assert proxy.one.vm.allocate(ONEADMIN_SESSION, TEMPLATE_1) == ast.literal_eval(
        captured("vm-allocate.txt")
    )
    ok, doc, code = proxy.one.vm.info(ONEADMIN_SESSION, 0)
    assert (ok, code) == (True, 0)
    assert normalise(doc) == normalise(captured("vm-info-pending.xml"))
    ok, pool, code = proxy.one.vmpool.info(ONEADMIN_SESSION, -2, -1, -1, -1)
    assert normalise(pool) == normalise(captured("vmpool-info-pending.xml"))


def test_running_info_and_pools_equal_the_captures(capture_cloud: LocalCloud) -> None:
    proxy = rpc2(capture_cloud)
    assert proxy.one.vm.allocate(ONEADMIN_SESSION, TEMPLATE_1) == [True, 0, 0]
    _, doc, _ = proxy.one.vm.info(ONEADMIN_SESSION, 0)
    assert normalise(doc) == normalise(captured("vm-info.xml"))
    for flt, capture in ((-2, "vmpool-info.xml"), (-3, "vmpool-info-mine.xml")):
        _, pool, _ = proxy.one.vmpool.info(ONEADMIN_SESSION, flt, -1, -1, -1)
        assert normalise(pool) == normalise(captured(capture)), flt


def _without_history(doc: str) -> str:
    return re.sub(r"<HISTORY_RECORDS>.*</HISTORY_RECORDS>", "", doc)


def _history_tags(doc: str) -> list[list[str]]:
    records = re.findall(r"<HISTORY>(.*?)</HISTORY>", doc)
    return [re.findall(r"<([A-Z_]+)>", r) for r in records]


def test_done_vm_matches_the_done_capture(capture_cloud: LocalCloud) -> None:
    proxy = rpc2(capture_cloud)
    proxy.one.vm.allocate(ONEADMIN_SESSION, TEMPLATE_1)
    assert proxy.one.vm.action(ONEADMIN_SESSION, "shutdown", 0) == [True, 0, 0]
    _, doc, _ = proxy.one.vm.info(ONEADMIN_SESSION, 0)
    done = captured("vm-info-done.xml")
    assert normalise(_without_history(doc)) == normalise(_without_history(done))
    # The capture's VM went through stop/resume (four records); each record has the same
    # elements in the same order as ours.
    assert _history_tags(doc) == _history_tags(done)[-1:]
    assert re.search(r"<ETIME>[1-9]", doc)
    # Not in the default listing, in state -2 and state 6.
    assert proxy.one.vmpool.info(ONEADMIN_SESSION, -2, -1, -1, -1)[1] == "<VM_POOL></VM_POOL>"
    for state in (-2, 6):
        _, pool, _ = proxy.one.vmpool.info(ONEADMIN_SESSION, -2, -1, -1, state)
        assert pool == f"<VM_POOL>{doc}</VM_POOL>", state


# --------------------------------------------------------------------------- actions

ACTION_LINE = re.compile(r"^(\S+) on ([A-Z]+): (\[.*\])$")


def _action_cases() -> list[tuple[str, str, list[Any]]]:
    cases = []
    for line in captured("action-errors.txt").splitlines():
        m = ACTION_LINE.match(line)
        if m:
            cases.append((m[1], m[2], ast.literal_eval(m[3])))
    return cases


ACTION_CASES = _action_cases()


def _vm_in(cloud: LocalCloud, proxy: Any, state: str) -> int:
    """A new VM of the capture's template brought to ``state``."""
    ok, vm_id, _ = proxy.one.vm.allocate(ONEADMIN_SESSION, TEMPLATE_1)
    assert ok
    steps = {
        "PENDING": [],
        "RUNNING": [],
        "HOLD": ["hold"],
        "SUSPENDED": ["suspend"],
        "POWEROFF": ["poweroff"],
        "STOPPED": ["stop"],
        "DONE": ["shutdown"],
    }[state]
    for action in steps:
        assert proxy.one.vm.action(ONEADMIN_SESSION, action, vm_id) == [True, vm_id, 0]
    wanted = {
        "PENDING": PENDING,
        "HOLD": HOLD,
        "RUNNING": RUNNING,
        "SUSPENDED": SUSPENDED,
        "POWEROFF": POWEROFF,
        "STOPPED": STOPPED,
        "DONE": DONE,
    }[state]
    wait_for(lambda: cloud.vm_state("lal", vm_id) == wanted, what=f"VM {vm_id} {state}")
    return int(vm_id)


def test_action_errors_txt_lists_every_case() -> None:
    assert len(ACTION_CASES) == 28
    assert {state for _, state, _ in ACTION_CASES} == {
        "PENDING",
        "HOLD",
        "RUNNING",
        "SUSPENDED",
        "POWEROFF",
        "STOPPED",
        "DONE",
    }


@pytest.mark.parametrize(
    ("action", "state", "reply"), ACTION_CASES, ids=[f"{a}-{s}" for a, s, _ in ACTION_CASES]
)
def test_action_replies_match_the_capture(
    capture_cloud: LocalCloud,
    frozen_cloud: LocalCloud,
    action: str,
    state: str,
    reply: list[Any],
) -> None:
    cloud = frozen_cloud if state in ("PENDING", "HOLD") else capture_cloud
    proxy = rpc2(cloud)
    if state == "HOLD":
        vm_id = _vm_in(cloud, proxy, "PENDING")
        assert proxy.one.vm.action(ONEADMIN_SESSION, "hold", vm_id) == [True, vm_id, 0]
    else:
        vm_id = _vm_in(cloud, proxy, state)
    got = proxy.one.vm.action(ONEADMIN_SESSION, action, vm_id)
    expected = [True, vm_id, 0] if reply[0] else reply
    assert got == expected


def test_shutdown_and_finalize_lifecycles(capture_cloud: LocalCloud) -> None:
    proxy = rpc2(capture_cloud)
    a = _vm_in(capture_cloud, proxy, "RUNNING")
    b = _vm_in(capture_cloud, proxy, "RUNNING")
    assert proxy.one.vm.action(ONEADMIN_SESSION, "finalize", a) == [True, a, 0]
    assert capture_cloud.vm_state("lal", a) == DONE
    assert proxy.one.vm.action(ONEADMIN_SESSION, "shutdown", b) == [True, b, 0]
    wait_for(lambda: capture_cloud.vm_state("lal", b) == DONE, what="shutdown")
    # DONE VMs stay readable; leases go on from the last one given (as OpenNebula's ranged
    # leases do), not back to the released ones.
    assert proxy.one.vm.info(ONEADMIN_SESSION, a)[0] is True
    c = _vm_in(capture_cloud, proxy, "RUNNING")
    _, doc, _ = proxy.one.vm.info(ONEADMIN_SESSION, c)
    assert "<IP><![CDATA[192.168.100.3]]></IP>" in doc


def test_4x_and_5x_action_names_and_messages() -> None:
    with LocalCloud(["lal"], version="5.x", boot_step=0) as cloud:
        proxy = rpc2(cloud)
        ok, vm_id, _ = proxy.one.vm.allocate(SESSION, NO_NIC)
        assert ok
        assert proxy.one.vm.action(SESSION, "nonsense", vm_id) == [
            False,
            '[one.vm.action] Action "nonsense" is not supported',
            2048,
            -1,
            0,
        ]
        assert proxy.one.vm.action(SESSION, "terminate-hard", vm_id) == [True, vm_id, 0]
        assert cloud.vm_state("lal", vm_id) == DONE
        assert proxy.one.vm.info(SESSION, 99) == [
            False,
            "[one.vm.info] Error getting virtual machine [99].",
            1024,
            99,
            0,
        ]


# --------------------------------------------------------------------------- pools


def test_pool_filters_by_owner_id_range_and_state() -> None:
    users = {"alice": "a-pw", "bob": "b-pw", "oneadmin": "password"}
    with LocalCloud(["lal"], users=users, boot_step=0) as cloud:
        proxy = rpc2(cloud)
        template = 'NAME = "t"\nCPU = 1\nMEMORY = 64\nDISK = [ IMAGE_ID = 0 ]\n'
        alice = [proxy.one.vm.allocate("alice:a-pw", template)[1] for _ in range(3)]
        bob = [proxy.one.vm.allocate("bob:b-pw", template)[1] for _ in range(2)]
        assert (alice, bob) == ([0, 1, 2], [3, 4])
        assert proxy.one.vm.action("alice:a-pw", "shutdown", 1) == [True, 1, 0]
        wait_for(lambda: cloud.vm_state("lal", 1) == DONE)

        def ids(session: str, flt: int, start: int, end: int, state: int) -> list[int]:
            ok, pool, code = proxy.one.vmpool.info(session, flt, start, end, state)
            assert (ok, code) == (True, 0), pool
            return [int(i) for i in re.findall(r"<VM><ID>(\d+)</ID>", pool)]

        # Filters -1 (group: only one's own, permissions are OWNER_U), -2 (all, but users see
        # only their own), -3 (mine); a uid (oneadmin only, or oneself).
        assert ids("alice:a-pw", -1, -1, -1, -1) == [0, 2]
        assert ids("alice:a-pw", -2, -1, -1, -1) == [0, 2]
        assert ids("alice:a-pw", -3, -1, -1, -1) == [0, 2]
        assert ids("oneadmin:password", -2, -1, -1, -1) == [0, 2, 3, 4]
        assert ids("oneadmin:password", -3, -1, -1, -1) == []
        uid_bob = 2  # users are numbered in the order given, after oneadmin
        assert ids("oneadmin:password", uid_bob, -1, -1, -1) == [3, 4]
        assert ids("alice:a-pw", uid_bob, -1, -1, -1) == []
        # State -1 = not DONE, -2 = all, n = that state.
        assert ids("alice:a-pw", -3, -1, -1, -2) == [0, 1, 2]
        assert ids("alice:a-pw", -3, -1, -1, 6) == [1]
        assert ids("alice:a-pw", -3, -1, -1, 3) == [0, 2]
        assert ids("alice:a-pw", -3, -1, -1, 1) == []
        # Id range [start, end]; end -1 = no upper bound; start -1 = no range at all.
        assert ids("oneadmin:password", -2, 2, 3, -1) == [2, 3]
        assert ids("oneadmin:password", -2, 3, -1, -1) == [3, 4]
        assert ids("oneadmin:password", -2, -1, 2, -1) == [0, 2, 3, 4]
        assert ids("oneadmin:password", -2, 4, 2, -1) == []
        # Out-of-range flags.
        assert proxy.one.vmpool.info("alice:a-pw", -4, -1, -1, -1) == [
            False,
            "[VirtualMachinePoolInfo] Incorrect filter_flag",
            4096,
        ]
        for state in (-3, 8):
            assert proxy.one.vmpool.info("alice:a-pw", -2, -1, -1, state) == [
                False,
                "[VirtualMachinePoolInfo] Incorrect filter_flag, state",
                4096,
            ]


def test_other_users_vms_are_not_authorized() -> None:
    users = {"alice": "a-pw", "bob": "b-pw"}
    with LocalCloud(["lal"], users=users, boot_step=0) as cloud:
        proxy = rpc2(cloud)
        vm_id = proxy.one.vm.allocate("alice:a-pw", NO_NIC)[1]
        assert proxy.one.vm.info("bob:b-pw", vm_id) == [
            False,
            f"[VirtualMachineInfo] User [2] : Not authorized to perform USE VM [{vm_id}].",
            512,
        ]
        assert proxy.one.vm.action("bob:b-pw", "finalize", vm_id) == [
            False,
            f"[VirtualMachineAction] User [2] : Not authorized to perform MANAGE VM [{vm_id}].",
            512,
        ]
        assert cloud.vm_state("lal", vm_id) == RUNNING


def test_sites_are_independent(cloud: LocalCloud) -> None:
    lal, grnet = rpc2(cloud, "lal"), rpc2(cloud, "grnet")
    assert lal.one.vm.allocate(SESSION, TEMPLATE_1)[:1] == [True]
    assert grnet.one.vmpool.info(SESSION, -2, -1, -1, -1) == [True, "<VM_POOL></VM_POOL>", 0]
    assert grnet.one.vm.info(SESSION, 0) == [
        False,
        "[VirtualMachineInfo] Error getting virtual machine [0].",
        1024,
    ]
    assert cloud.vm_ids("lal") == [0]
    assert cloud.vm_ids("grnet") == []


def test_not_an_xml_rpc_call_is_fault_503(cloud: LocalCloud) -> None:
    transport = xmlrpc.client.Transport()
    url = cloud.endpoints("lal")["rpc2"]
    host, handler = url.removeprefix("http://").split("/", 1)
    with pytest.raises(xmlrpc.client.Fault) as err:
        transport.request(host, "/" + handler, b"<methodCall><methodName>x", verbose=False)
    assert err.value.faultCode == -503
    assert err.value.faultString.startswith("Call XML not a proper XML-RPC call. ")


# --------------------------------------------------------------------------- TLS


def test_certificate_path_over_tls() -> None:
    with LocalCloud(["lal"], tls=True, boot_step=0) as cloud:
        ca = cloud.ca_file
        assert ca is not None
        cert, key = cloud.issue_client_cert("carol")
        url = cloud.endpoints("lal")["compute"].replace("/xmlrpc", "/cert/xmlrpc")
        assert url.startswith("https://127.0.0.1:")

        with_cert = ssl.create_default_context(cafile=ca)
        with_cert.load_cert_chain(cert, key)
        proxy = xmlrpc.client.ServerProxy(url, context=with_cert)
        ok, vm_id, _ = proxy.one.vm.allocate("dummy:pass", TEMPLATE_1)
        assert ok
        # The proxy names the user after the URL-encoded certificate DN.
        _, doc, _ = proxy.one.vm.info("dummy:pass", vm_id)
        uname = re.search(r"<UNAME>([^<]*)</UNAME>", doc)
        assert uname is not None
        assert uname[1] == "CN%3Dcarol%2CO%3DStratusLab+Local+Cloud"

        # No client certificate: the TLS handshake succeeds, the context refuses (403).
        without = ssl.create_default_context(cafile=ca)
        with pytest.raises(xmlrpc.client.ProtocolError) as err:
            xmlrpc.client.ServerProxy(url, context=without).one.system.version("x")
        assert err.value.errcode == 403
        # The password path works over TLS too; an untrusting client fails verification.
        pswd = proxy_url(cloud, "lal", DEFAULT_USER, DEFAULT_PASSWORD)
        assert xmlrpc.client.ServerProxy(pswd, context=without).one.system.version("x") == [
            True,
            "3.8.5",
            0,
        ]
        untrusting = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError):
            xmlrpc.client.ServerProxy(pswd, context=untrusting).one.system.version("x")
