"""Every VM document and pool the local cloud emits validates against OpenNebula 3.8.5's own
schemas (tests/fixtures/opennebula-xsd/3.8.5/vm.xsd, vm_pool.xsd), checked with ``xmlschema``.

As SOURCES.md there says, oned returns documents without the schemas' namespace (it is added to
the root first, as upstream's test.sh does) and emits ``HISTORY/DS_LOCATION``, which vm.xsd does
not declare: that element is the one tolerated drift, and nothing else may fail.
"""

from __future__ import annotations

import re
import xmlrpc.client
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest
import xmlschema
from helpers import FIXTURES, wait_for

from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER, LocalCloud

XSD = FIXTURES / "opennebula-xsd" / "3.8.5"
CAPTURES = FIXTURES / "opennebula-3.8.5"
TEMPLATE_1 = (CAPTURES / "vm-template-1.txt").read_text(encoding="utf-8")
SESSION = f"{DEFAULT_USER}:{DEFAULT_PASSWORD}"
NAMESPACE = "http://opennebula.org/XMLSchema"
DS_LOCATION = re.compile(r"<DS_LOCATION>[^<]*</DS_LOCATION>")


@pytest.fixture(scope="module")
def vm_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(XSD / "vm.xsd")


@pytest.fixture(scope="module")
def pool_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(XSD / "vm_pool.xsd")


def with_namespace(doc: str) -> str:
    end = doc.index(">")
    return f'{doc[:end]} xmlns="{NAMESPACE}"{doc[end:]}'


def check(schema: xmlschema.XMLSchema, doc: str) -> None:
    """``doc`` validates once DS_LOCATION is dropped, and with it fails on DS_LOCATION only."""
    schema.validate(with_namespace(DS_LOCATION.sub("", doc)))
    if DS_LOCATION.search(doc):
        errors = list(schema.iter_errors(with_namespace(doc)))
        assert errors
        for error in errors:
            assert error.reason is not None
            assert "DS_LOCATION" in error.reason, error.reason


def rpc2(cloud: LocalCloud) -> Any:
    return xmlrpc.client.ServerProxy(cloud.endpoints("lal")["rpc2"])


def info(proxy: Any, vm_id: int) -> str:
    ok, doc, code = proxy.one.vm.info(SESSION, vm_id)
    assert (ok, code) == (True, 0), doc
    return str(doc)


def pool(proxy: Any, state: int = -1, flt: int = -2) -> str:
    ok, doc, code = proxy.one.vmpool.info(SESSION, flt, -1, -1, state)
    assert (ok, code) == (True, 0), doc
    return str(doc)


def states_of(doc: str) -> tuple[int, int]:
    m = re.search(r"<STATE>(\d+)</STATE><LCM_STATE>(\d+)</LCM_STATE>", doc)
    assert m is not None
    return int(m[1]), int(m[2])


def test_the_schemas_accept_the_real_captures_modulo_ds_location(
    vm_schema: xmlschema.XMLSchema, pool_schema: xmlschema.XMLSchema
) -> None:
    """The checker itself, on the real daemon's documents (xsd-validation.txt's result)."""
    for name in sorted(CAPTURES.glob("vm-info*.xml")):
        check(vm_schema, name.read_text(encoding="utf-8"))
    for name in sorted(CAPTURES.glob("vmpool-info*.xml")):
        check(pool_schema, name.read_text(encoding="utf-8"))
    # And it can fail: a document missing a mandatory element does not validate.
    broken = (CAPTURES / "vm-info-pending.xml").read_text().replace("<RESCHED>0</RESCHED>", "")
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        check(vm_schema, broken)


@pytest.fixture
def walking_cloud() -> Iterator[LocalCloud]:
    with LocalCloud(["lal"], boot_step=0.15) as cloud:
        yield cloud


def walk(proxy: Any, vm_id: int, until: tuple[int, int], seen: dict[tuple[int, int], str]) -> None:
    """Polls one.vm.info, keeping the first document of every (STATE, LCM_STATE), until
    ``until`` is reached."""

    def step() -> bool:
        doc = info(proxy, vm_id)
        seen.setdefault(states_of(doc), doc)
        return states_of(doc) == until

    wait_for(step, timeout=20, what=f"VM {vm_id} in {until}")


def test_every_state_of_a_lifecycle_validates(
    walking_cloud: LocalCloud, vm_schema: xmlschema.XMLSchema, pool_schema: xmlschema.XMLSchema
) -> None:
    proxy = rpc2(walking_cloud)
    ok, vm_id, _ = proxy.one.vm.allocate(SESSION, TEMPLATE_1)
    assert ok
    seen: dict[tuple[int, int], str] = {}
    walk(proxy, vm_id, (3, 3), seen)
    for action, target in (
        ("suspend", (5, 0)),
        ("resume", (3, 3)),
        ("poweroff", (8, 0)),
        ("restart", (3, 3)),
        ("stop", (4, 0)),
        ("resume", (3, 3)),
        ("shutdown", (6, 0)),
    ):
        assert proxy.one.vm.action(SESSION, action, vm_id) == [True, vm_id, 0], action
        walk(proxy, vm_id, target, seen)
    # PENDING, PROLOG, BOOT, RUNNING, SAVE_SUSPEND, SUSPENDED, BOOT_SUSPENDED,
    # SHUTDOWN_POWEROFF, POWEROFF, BOOT_POWEROFF, SAVE_STOP, EPILOG_STOP, STOPPED,
    # PROLOG_RESUME, SHUTDOWN, EPILOG, DONE: at least the parked ones and most transients.
    parked = {(1, 0), (3, 3), (5, 0), (8, 0), (4, 0), (6, 0)}
    assert parked <= set(seen)
    assert len(seen) >= 10, sorted(seen)
    for _state, doc in sorted(seen.items()):
        check(vm_schema, doc)
        check(pool_schema, f"<VM_POOL>{doc}</VM_POOL>")
    done = info(proxy, vm_id)
    assert done.count("<HISTORY>") >= 3
    check(vm_schema, done)
    # DONE VMs: pools with state -2 (all) and 6 (DONE).
    for state in (-2, 6):
        doc = pool(proxy, state)
        assert doc.count("<VM>") == 1
        check(pool_schema, doc)


def test_hold_and_pending_documents_validate(vm_schema: xmlschema.XMLSchema) -> None:
    with LocalCloud(["lal"], boot_step=3600) as cloud:
        proxy = rpc2(cloud)
        ok, vm_id, _ = proxy.one.vm.allocate(SESSION, TEMPLATE_1)
        assert ok
        pending = info(proxy, vm_id)
        assert states_of(pending) == (1, 0)
        assert "<HISTORY_RECORDS/>" in pending
        vm_schema.validate(with_namespace(pending))  # no history: validates as is
        assert proxy.one.vm.action(SESSION, "hold", vm_id)[0]
        held = info(proxy, vm_id)
        assert states_of(held) == (2, 0)
        vm_schema.validate(with_namespace(held))


def test_seeded_pools_validate(pool_schema: xmlschema.XMLSchema) -> None:
    with LocalCloud(["lal"], boot_step=0) as cloud:
        cloud.seed("lal", vms=50)
        proxy = rpc2(cloud)
        assert proxy.one.vm.action(SESSION, "finalize", 7) == [True, 7, 0]
        for state, count in ((-1, 49), (-2, 50), (6, 1), (3, 49)):
            doc = pool(proxy, state)
            assert doc.count("<VM>") == count, state
            check(pool_schema, doc)
        assert pool(proxy, -1, -3).count("<VM>") == 49
        assert pool(proxy, 1) == "<VM_POOL></VM_POOL>"
        pool_schema.validate(with_namespace("<VM_POOL></VM_POOL>"))


@pytest.mark.parametrize("version", ["3.2", "4.x", "5.x"])
def test_other_version_knobs_emit_the_same_valid_documents(
    version: str, vm_schema: xmlschema.XMLSchema, pool_schema: xmlschema.XMLSchema
) -> None:
    stop, undeploy = ("stop", None) if version == "3.2" else ("stop", "undeploy")
    with LocalCloud(["lal"], version=version, boot_step=0) as cloud:
        proxy = rpc2(cloud)
        ok, vm_id, _ = proxy.one.vm.allocate(SESSION, TEMPLATE_1)
        assert ok
        check(vm_schema, info(proxy, vm_id))
        assert proxy.one.vm.action(SESSION, stop, vm_id)[0]
        assert states_of(info(proxy, vm_id)) == (4, 0)
        check(vm_schema, info(proxy, vm_id))
        if undeploy:
            ok, second, _ = proxy.one.vm.allocate(SESSION, TEMPLATE_1)
            assert proxy.one.vm.action(SESSION, undeploy, second)[0]
            assert states_of(info(proxy, second)) == (9, 0)
            check(vm_schema, info(proxy, second))
        check(pool_schema, pool(proxy, -2))


def test_awkward_values_validate(
    walking_cloud: LocalCloud, vm_schema: xmlschema.XMLSchema, pool_schema: xmlschema.XMLSchema
) -> None:
    # Markup characters, CDATA terminators, non-ASCII, multi-line values, repeated
    # attributes: the emitted documents stay well-formed and valid, and carry the values back.
    name = "a<b & c>d ]]> é"
    script = "  x ]]> y ]]]]> z\t"
    template = (
        f'NAME = "{name}"\nCPU = 0.25\nMEMORY = 1536\n'
        'DISK = [ IMAGE_ID = 0, TARGET = "vda", TARGET = "dup" ]\n'
        'DISK = [ TYPE = "swap", SIZE = 512 ]\n'
        f'CONTEXT = [ PUBLIC_KEY = "ssh-rsa AAA\n", SCRIPT = "{script}" ]'
    )
    proxy = rpc2(walking_cloud)
    ok, vm_id, code = proxy.one.vm.allocate(SESSION, template)
    assert (ok, code) == (True, 0), vm_id
    seen: dict[tuple[int, int], str] = {}
    walk(proxy, vm_id, (3, 3), seen)
    for doc in seen.values():
        check(vm_schema, doc)
        root = ElementTree.fromstring(doc)
        assert root.findtext("NAME") == name
        assert root.findtext("TEMPLATE/CONTEXT/SCRIPT") == script
        assert root.findtext("TEMPLATE/CONTEXT/PUBLIC_KEY") == "ssh-rsa AAA\n"
    check(pool_schema, pool(proxy))
