"""Template injection, property-style: thousands of generated node names, context values and public
keys full of template syntax (quotes, backslashes, brackets, ``=``, ``,``, ``#``, newlines), XML
syntax (``]]>``, ``<``, ``&``), OpenNebula's own separators (``@^_^@``, ``$NAME``), control
characters and unicode go through ``create_node`` against one local cloud.

Each input must either become exactly one VM that carries it unchanged (the listed NAME, or the
CONTEXT entry as the daemon parsed it) and nothing else — or fail with a ``ValueError`` before
any request is sent. Which of the two is predicted by an oracle written here from the rules of
``src/one/template.rs`` (the daemon grammar), so a renderer that refused everything, or let a
value through that the daemon would mangle, fails the test.

``INJECTION_CASES`` (default 10,000) sets how many inputs of each kind are generated; a seeded
generator keeps every run identical.
"""

from __future__ import annotations

import os
import random
import xml.etree.ElementTree as ET
import xmlrpc.client
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import CloudFactory
from libcloud.compute.base import Node, NodeAuthSSHKey, NodeSize

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

CASES = int(os.environ.get("INJECTION_CASES", "10000"))
SEED = 20261126
SITE = "lal"
# A plain URL image: no Marketplace request per create, so the counts below are exact.
IMAGE = "http://images.example.org/stratuslab/root.img"
PLAIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOn2oeaD0RrhPJ+ib3tcBI8p injection@test"
THREADS = 4

# Unicode White_Space (what Rust's str::trim removes, and what the VM listing does not keep).
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)

PIECES = [
    '"',
    "'",
    "\\",
    '\\"',
    "\\\\",
    "[",
    "]",
    "=",
    ",",
    "#",
    "\n",
    "\t",
    "\r",
    "\r\n",
    "\x00",
    "\x01",
    "\x1b",
    "\x1f",
    "\x7f",
    " ",
    "  ",
    "$",
    "$NAME",
    "$NIC[IP]",
    '$NIC[IP, NETWORK="public"]',
    "]]>",
    "]]",
    "<![CDATA[",
    "<",
    ">",
    "&",
    "&amp;",
    "@^_^@",
    "@^_^",
    "é",
    "中文",
    "😀",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\u2028",
    "\x85",
    "\xa0",
    "\ud800",
    'NAME = "x"',
    '"\nNAME = "pwned',
    '",\nX = "',
    ']\nCONTEXT = [ X = "y" ]\n',
    'DISK = [ SOURCE = "/etc/shadow" ]',
    "%s",
    "{}",
    "\\n",
    "a",
    "abc",
    "node-1",
    "x" * 40,
    "é" * 30,
]


def generate(rng: random.Random, max_pieces: int = 6) -> str:
    parts = [rng.choice(PIECES) for _ in range(rng.randint(0, max_pieces))]
    if rng.random() < 0.5:
        parts.insert(rng.randint(0, len(parts)), "vm")
    return "".join(parts)


def corpus(kind: str, count: int, fixed: Sequence[str]) -> list[str]:
    """``fixed`` edge cases, every piece alone and inside a word, then seeded random mixes."""
    rng = random.Random(f"{SEED}-{kind}")
    items = list(fixed)
    for piece in PIECES:
        items += [piece, f"a{piece}b", f"{piece}{piece}"]
    while len(items) < count:
        items.append(generate(rng))
    return items[: max(count, len(fixed))]


# ------------------------------------------------------------------------------------- oracle


def has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def value_problem(value: str) -> str | None:
    """Why the daemon's template syntax (or the XML it writes) cannot carry ``value`` unchanged."""
    if has_surrogate(value):
        return "not encodable as UTF-8"
    if value == "":
        return "empty"
    if value.endswith("\\") or '\\"' in value:
        return "backslash before a quote"
    if "]]>" in value:
        return "ends a CDATA section"
    if "@^_^@" in value:
        return "oned's attribute separator"
    for c in value:
        if (c < " " and c not in "\t\n") or c in "\ufffe\uffff":
            return f"character {c!r}"
    return None


def name_problem(name: str) -> str | None:
    if has_surrogate(name):
        return "not encodable as UTF-8"
    if name.strip(WHITE_SPACE) == "":
        return "empty"
    if name.strip(WHITE_SPACE) != name:
        return "white space at an end"
    if len(name.encode()) > 128:
        return "longer than 128 bytes"
    if "<" in name or "&" in name:
        return "unescaped in oned's XML"
    return value_problem(name)


def key_text(text: str) -> str:
    """The public key the driver sends: lines (Rust ``str::lines``: split at LF, one CR before it
    dropped), ``Comment:`` lines dropped, joined with LF, white space trimmed."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return "\n".join(line for line in lines if not line.startswith("Comment:")).strip(WHITE_SPACE)


def key_problem(text: str) -> str | None:
    if has_surrogate(text):
        return "not encodable as UTF-8"
    sent = key_text(text)
    if sent == "":
        return "empty"
    return value_problem(sent)


def context_entries(template: str) -> list[tuple[str, str]]:
    """CONTEXT entries of a template as rendered by the driver, read with the daemon's lexer rules
    (a quoted string ends at the first quote not preceded by a backslash; ``\\"`` is a quote)."""
    head = "\nCONTEXT = [\n"
    i = template.index(head) + len(head)
    out = []
    while True:
        eq = template.index(' = "', i)
        key = template[i:eq]
        j = eq + 4
        while True:
            k = template.index('"', j)
            if template[k - 1] != "\\":
                break
            j = k + 1
        out.append((key, template[eq + 4 : k].replace('\\"', '"')))
        if template.startswith(",\n", k + 1):
            i = k + 3
        elif template.startswith("\n]\n", k + 1):
            return out
        else:
            raise AssertionError(f"unexpected text after a CONTEXT value: {template[k : k + 20]!r}")


# ------------------------------------------------------------------------------------ harness


@pytest.fixture
def cloud(make_cloud: CloudFactory) -> LocalCloud:
    # One cloud per kind of input. VMs never leave PENDING (nothing to simulate); the private
    # network has 20,000 addresses per site.
    return make_cloud(sites=[SITE], boot_step=3600.0)


@pytest.fixture
def driver(cloud: LocalCloud) -> StratusLabNodeDriver:
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    # One ordinary VM first: the driver asks the site's version once, so that every later
    # create costs exactly one.vm.allocate + one.vm.info.
    driver.create_node(
        name="warm-up",
        size=small(driver),
        image=IMAGE,
        auth=NodeAuthSSHKey(PLAIN_KEY),
        ex_network="private",
    )
    return driver


def small(driver: StratusLabNodeDriver) -> NodeSize:
    return next(s for s in driver.list_sizes() if s.id == "t1.micro")


class Counts:
    """VM ids and request counters of the site, to prove that refusals sent nothing."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.vms = len(cloud.vm_ids(SITE))
        self.allocations = cloud.request_count(SITE, "compute", "one.vm.allocate")
        self.compute = cloud.request_count(SITE, "compute", "*")
        self.marketplace = cloud.request_count(None, "marketplace", "*")

    def assert_only(self, created: int) -> None:
        cloud = self.cloud
        assert len(cloud.vm_ids(SITE)) == self.vms + created
        assert cloud.request_count(SITE, "compute", "one.vm.allocate") == self.allocations + created
        # one.vm.allocate + one.vm.info per VM, nothing else (see the driver fixture).
        assert cloud.request_count(SITE, "compute", "*") == self.compute + 2 * created
        assert cloud.request_count(None, "marketplace", "*") == self.marketplace


Outcome = tuple[Node | None, BaseException | None]


def run_all(create: Callable[[Any], Node], inputs: Sequence[Any]) -> list[Outcome]:
    def one(arg: Any) -> Outcome:
        try:
            return create(arg), None
        except Exception as exc:
            return None, exc

    # The driver releases the GIL on every call and is safe to share between threads.
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, inputs))


def pool_vms(cloud: LocalCloud) -> dict[int, ET.Element]:
    """Every VM of the site as an independent client (Python's xmlrpc.client, ElementTree) reads
    it straight from the daemon."""
    rpc = xmlrpc.client.ServerProxy(cloud.endpoints(SITE)["rpc2"])
    ok, doc, _code = rpc.one.vmpool.info(f"{DEFAULT_USER}:{DEFAULT_PASSWORD}", -3, -1, -1, -1)
    assert ok is True
    return {int(vm.findtext("ID", "")): vm for vm in ET.fromstring(doc).findall("VM")}


def check_verdicts(
    inputs: Sequence[str], outcomes: list[Outcome], problem: Callable[[str], str | None]
) -> list[tuple[str, Node]]:
    """Accepted (input, node) pairs; fails on the first inputs whose fate the oracle did not
    predict, or that failed with something else than a ValueError."""
    wrong = []
    accepted = []
    for text, (node, exc) in zip(inputs, outcomes, strict=True):
        predicted = problem(text)
        if node is not None:
            if predicted is not None:
                wrong.append(f"{text!r}: accepted, but {predicted}")
            accepted.append((text, node))
        elif not isinstance(exc, ValueError):
            wrong.append(f"{text!r}: {type(exc).__name__}: {exc}")
        elif predicted is None:
            wrong.append(f"{text!r}: refused ({exc}), but the oracle sees no problem")
    assert not wrong, f"{len(wrong)} unexpected outcomes, first ones:\n" + "\n".join(wrong[:15])
    return accepted


# -------------------------------------------------------------------------------------- tests


def test_names(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    fixed = [
        "",
        " ",
        "\n",
        "\u3000",
        "plain",
        " lead",
        "trail ",
        "inner space",
        "x" * 128,
        "x" * 129,
        "é" * 64,
        "é" * 65,
        'a"b',
        '"',
        '\\"',
        "a\\",
        "\\a",
        "a]]>b",
        "a<b",
        "a&b",
        "a>b",
        "a\nb",
        "a\tb",
        "a\rb",
        "a@^_^@b",
        "$NAME",
        '"]\nNAME = "pwned"\nX = [ Y = "',
    ]
    names = corpus("names", CASES, fixed)
    assert len(names) >= CASES
    size = small(driver)
    auth = NodeAuthSSHKey(PLAIN_KEY)
    before = Counts(cloud)

    def create(name: str) -> Node:
        return driver.create_node(
            name=name, size=size, image=IMAGE, auth=auth, ex_network="private"
        )

    outcomes = run_all(create, names)
    accepted = check_verdicts(names, outcomes, name_problem)
    assert len(accepted) >= len(names) // 4, "the generator should mostly produce usable names"
    assert len(accepted) < len(names) - len(fixed) // 2, "and some unusable ones"
    for text, (_node, exc) in zip(names, outcomes, strict=True):
        if exc is not None and not has_surrogate(text):
            message = str(exc)
            assert "NAME" in message or "node name" in message, message
    before.assert_only(len(accepted))

    created_ids = {node.id for _text, node in accepted}
    assert len(created_ids) == len(accepted)
    listed = {n.id: n.name for n in driver.list_nodes(ex_location=SITE)}
    new = {i: name for i, name in listed.items() if i in created_ids}
    assert len(new) == len(accepted)
    daemon = pool_vms(cloud)
    for text, node in accepted:
        assert node.name == text
        assert new[node.id] == text, (text, new[node.id])
        assert daemon[node.extra["vm_id"]].findtext("NAME") == text


def test_context_values(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    fixed = ["", " ", "\n", " padded ", "\n\nlines\n", "a\\b", "x" * 4000]
    values = corpus("context", CASES, fixed)
    good = [v for v in values if value_problem(v) is None]
    bad = [v for v in values if value_problem(v) is not None]
    assert len(good) >= len(values) // 4
    assert len(bad) >= len(values) // 10
    # Values the oracle accepts travel ten per VM; each refused one alone, beside a good one, so
    # one refusal cannot hide another.
    batches: list[list[tuple[str, str]]] = [
        [(f"V{j}", v) for j, v in enumerate(good[i : i + 10])] for i in range(0, len(good), 10)
    ]
    batches += [[("GOOD", "fine"), ("BAD", v)] for v in bad]
    size = small(driver)
    auth = NodeAuthSSHKey(PLAIN_KEY)
    before = Counts(cloud)

    def create(context: list[tuple[str, str]]) -> Node:
        return driver.create_node(
            name="ctx",
            size=size,
            image=IMAGE,
            auth=auth,
            ex_network="private",
            ex_context=dict(context),
        )

    outcomes = run_all(create, batches)
    wrong = []
    made = []
    for context, (node, exc) in zip(batches, outcomes, strict=True):
        expect_ok = all(value_problem(v) is None for _k, v in context)
        if node is not None and expect_ok:
            made.append((context, node))
        elif node is None and not expect_ok and isinstance(exc, ValueError):
            assert "CONTEXT BAD" in str(exc) or "UTF-8" in str(exc) or "utf-8" in str(exc), exc
        else:
            wrong.append(f"{context!r}: {node} {type(exc).__name__}: {exc}")
    assert not wrong, f"{len(wrong)} unexpected outcomes:\n" + "\n".join(wrong[:15])
    before.assert_only(len(made))

    daemon = pool_vms(cloud)
    for context, node in made:
        vm_id = node.extra["vm_id"]
        template = cloud.vm_template(SITE, vm_id)
        assert template is not None
        assert context_entries(template) == [
            ("public_key", PLAIN_KEY),
            *context,
            ("target", "hdd"),
        ]
        stored = daemon[vm_id].find("TEMPLATE/CONTEXT")
        assert stored is not None
        tags = sorted(child.tag for child in stored)
        assert tags == sorted(["DISK_ID", "PUBLIC_KEY", "TARGET", *(k for k, _v in context)])
        for key, value in context:
            if "$" not in value:  # oned substitutes $VARIABLES inside CONTEXT on purpose
                assert stored.findtext(key) == value, (key, value)


def test_context_keys(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    bad_keys = ["", "1A", "A B", "A=B", 'A"', "A]", "é", "A-B", "A\n", "A.B", "$A", "PUBLIC_KEY"]
    good_keys = ["a", "_", "_x1", "MyKey", "K" * 200]
    before = Counts(cloud)
    for key in bad_keys:
        with pytest.raises(ValueError) as info:
            driver.create_node(
                name="keys",
                size=small(driver),
                image=IMAGE,
                auth=NodeAuthSSHKey(PLAIN_KEY),
                ex_network="private",
                ex_context={key: "v"},
            )
        assert "CONTEXT" in str(info.value), str(info.value)
    before.assert_only(0)
    node = driver.create_node(
        name="keys",
        size=small(driver),
        image=IMAGE,
        auth=NodeAuthSSHKey(PLAIN_KEY),
        ex_network="private",
        ex_context={k: "v" for k in good_keys},
    )
    before.assert_only(1)
    template = cloud.vm_template(SITE, node.extra["vm_id"])
    assert template is not None
    assert context_entries(template) == [
        ("public_key", PLAIN_KEY),
        *((k, "v") for k in good_keys),
        ("target", "hdd"),
    ]


def test_public_keys(cloud: LocalCloud, driver: StratusLabNodeDriver) -> None:
    fixed = [
        "",
        "\n",
        "Comment: only a comment\n",
        PLAIN_KEY,
        PLAIN_KEY + "\n",
        PLAIN_KEY + "\r\n",
        "Comment: ignored\n" + PLAIN_KEY + "\n",
        '---- BEGIN SSH2 PUBLIC KEY ----\nComment: "rsa-key"\nAAAAB3Nza\n---- END ----\n',
        PLAIN_KEY + "\n" + PLAIN_KEY + "\n",
        " " + PLAIN_KEY + " ",
        PLAIN_KEY + '", target = "hda',
        PLAIN_KEY + "\r",
    ]
    rng = random.Random(f"{SEED}-keys")
    keys = list(fixed)
    for text in corpus("keys", CASES - len(fixed), []):
        keys.append(
            rng.choice(["", "ssh-rsa AAAAB3NzaC1yc2E ", "Comment: x\n", "ssh-ed25519 AAAA "]) + text
        )
    size = small(driver)
    before = Counts(cloud)

    def create(key: str) -> Node:
        return driver.create_node(
            name="key", size=size, image=IMAGE, auth=NodeAuthSSHKey(key), ex_network="private"
        )

    outcomes = run_all(create, keys)
    accepted = check_verdicts(keys, outcomes, key_problem)
    assert len(accepted) >= len(keys) // 4
    before.assert_only(len(accepted))
    daemon = pool_vms(cloud)
    for text, node in accepted:
        vm_id = node.extra["vm_id"]
        template = cloud.vm_template(SITE, vm_id)
        assert template is not None
        assert context_entries(template) == [("public_key", key_text(text)), ("target", "hdd")]
        stored = daemon[vm_id].find("TEMPLATE/CONTEXT")
        assert stored is not None
        assert sorted(child.tag for child in stored) == ["DISK_ID", "PUBLIC_KEY", "TARGET"]
        if "$" not in text:
            assert stored.findtext("PUBLIC_KEY") == key_text(text)
