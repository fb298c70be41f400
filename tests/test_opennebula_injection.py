"""Template injection on a plain OpenNebula 7.4 site, property-style (as
``test_template_injection.py`` does for StratusLab sites): generated node names and context values
full of template syntax, XML syntax, OpenNebula's separators, variables, control characters and
unicode go through ``create_node``.

Each input must either become exactly one VM that carries it unchanged, and nothing else, or fail
with a ``ValueError`` before anything is sent. Which one is predicted by an oracle written here from
the 7.4 rules (``tests/fixtures/opennebula-7.4.0/more/template-escaping.md``: NAME refuses
``& | : ; / ' # { } < > \\ " $`` and TAB/LF/VT/FF/CR; characters outside the BMP get fault -503;
``]]>`` is refused; ``@^_^@`` splits CONTEXT; a backslash before a quote or at the end cannot be
written; a ``$`` must start a variable).
"""

from __future__ import annotations

import os
import random
import xml.etree.ElementTree as ET
import xmlrpc.client
from collections.abc import Iterator

import pytest
from libcloud.compute.base import NodeAuthSSHKey

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

CASES = int(os.environ.get("INJECTION_CASES", "600"))
SEED = 20261206
SITE = "one"
SESSION = f"{DEFAULT_USER}:{DEFAULT_PASSWORD}"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOn2oeaD0RrhPJ+ib3tcBI8p injection@test"
PIECES = [
    "a", "Z", "0", " ", "\t", "\n", "\r", '"', "'", "\\", "\\\"", "[", "]", "=", ",", "#", "$",
    "$NAME", "$$", "${", "&", "<", ">", "]]>", "@^_^@", "|", ":", ";", "/", "{", "}", "(", ")",
    "%", "*", "@", "é", "☃", "日本", "😀", "\x01", "\x7f", "\ufffe",
]  # fmt: skip
NAME_INVALID = set("&|:;/'#{}<>\\\"$\t\n\x0b\x0c\r")


SAFE = ["a", "Z", "0", " ", "[", "]", "=", ",", "(", ")", "%", "*", "@", "é", "☃", "日本"]


def generate(rng: random.Random) -> str:
    """Mostly harmless pieces, one hostile in three: both outcomes stay frequent."""
    return "".join(
        rng.choice(PIECES if rng.random() < 0.3 else SAFE) for _ in range(rng.randint(1, 6))
    )


def name_ok(name: str) -> bool:
    return (
        bool(name)
        and name == name.strip()
        and len(name.encode()) <= 128
        and not (set(name) & NAME_INVALID)
        and all(ord(c) <= 0xFFFF and c not in "\ufffe\uffff" for c in name)
        and all(c >= " " or c in "\t\n" for c in name)
        and "]]>" not in name
        and "@^_^@" not in name
    )


def value_ok(value: str) -> bool:
    if not value or value.endswith("\\") or '\\"' in value:
        return False
    if "]]>" in value or "@^_^@" in value:
        return False
    if any(ord(c) > 0xFFFF or c in "\ufffe\uffff" or (c < " " and c not in "\t\n") for c in value):
        return False
    for i, c in enumerate(value):
        if c == "$":
            nxt = value[i + 1 : i + 2]
            if not (nxt.isascii() and (nxt.isalnum() or nxt == "_")):
                return False
    return True


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    options = {SITE: {"version": "7.4", "site_type": "opennebula"}}
    with LocalCloud([SITE], site_options=options, boot_step=0) as c:
        yield c


def test_names_and_context_values(cloud: LocalCloud) -> None:
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    size = driver.list_sizes()[0]
    auth = NodeAuthSSHKey(KEY)
    proxy = xmlrpc.client.ServerProxy(cloud.endpoints(SITE)["rpc2"])
    rng = random.Random(SEED)
    accepted = refused = 0
    for _ in range(CASES):
        name, value = generate(rng), generate(rng).replace("$", "")
        if rng.random() < 0.2:
            value = generate(rng)  # with variables: only acceptance is predicted
        expect = name_ok(name) and value_ok(value)
        before = len(cloud.vm_ids(SITE))
        try:
            node = driver.create_node(
                name, size, "image-0@one", location=SITE, auth=auth, ex_context={"V": value}
            )
        except ValueError:
            assert not expect, (name, value)
            assert len(cloud.vm_ids(SITE)) == before, "a refused input reached the daemon"
            refused += 1
            continue
        assert expect, (name, value)
        accepted += 1
        vm = int(node.id.split("@")[0])
        doc = ET.fromstring(proxy.one.vm.info(SESSION, vm)[1])
        assert doc.findtext("NAME") == name
        context = doc.find("TEMPLATE/CONTEXT")
        assert context is not None
        keys = sorted(e.tag for e in context)
        assert keys == ["DISK_ID", "NETWORK", "SSH_PUBLIC_KEY", "V"], (name, value, keys)
        if "$" not in value:
            assert context.findtext("V") == value
    # The generator exercises both outcomes.
    assert accepted > CASES // 20 and refused > CASES // 4, (accepted, refused)
