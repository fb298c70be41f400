"""Bad input, table-driven: each entry gives its own specific error (type and message) and leaves
the local cloud exactly as it was (same VMs in the same states, same disks and mounts, and no
write request sent: ``one.vm.allocate``, ``one.vm.action``, pdisk ``POST``/``DELETE``).

Categories: configuration, constructor, names, sizes, images, locations, volumes, nodes, and
other ``create_node`` options. Remote "not found" answers (an unknown image identifier, a VM id
that does not exist) are a ``ProviderError`` with the service's code, as the service decides.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from libcloud.compute.base import (
    Node,
    NodeAuthPassword,
    NodeAuthSSHKey,
    NodeLocation,
    NodeSize,
    StorageVolume,
)
from libcloud.compute.drivers.dummy import DummyNodeDriver
from libcloud.compute.types import NodeState

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
from stratuslab_libcloud.errors import (
    StratusLabConfigError,
    StratusLabNotFoundError,
    StratusLabStateError,
)

IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBadInputxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx b@i"
)
UNKNOWN_UUID = "95b75092-17d2-459f-9fa0-cd1deaa721f1"


@dataclass
class Ctx:
    cloud: LocalCloud
    driver: StratusLabNodeDriver
    size: NodeSize
    node: Node
    stopped: Node
    volume: StorageVolume
    grnet_volume: StorageVolume
    other: DummyNodeDriver
    tmp: Path

    def config(self, text: str, **kwargs: Any) -> StratusLabNodeDriver:
        return StratusLabNodeDriver(ex_config_file=io.StringIO(text), **kwargs)

    def edited(self, old: str, new: str, **kwargs: Any) -> StratusLabNodeDriver:
        text = self.cloud.config_text
        assert old in text
        return self.config(text.replace(old, new, 1), **kwargs)

    def create(self, name: str = "n", **kwargs: Any) -> Node:
        kwargs.setdefault("auth", KEY)
        image = kwargs.pop("image", IMAGE)
        size = kwargs.pop("size", self.size)
        return self.driver.create_node(name, size, image, **kwargs)

    def sized(self, ram: int, cpu: int) -> NodeSize:
        return NodeSize("z", "z", ram, 0, None, None, self.driver, extra={"cpu": cpu})

    def volume_at(self, uuid: str, site: str | None) -> StorageVolume:
        extra = {} if site is None else {"location": site}
        return StorageVolume(uuid, "v", 1, self.driver, extra=extra)


@dataclass(frozen=True)
class Bad:
    category: str
    name: str
    call: Callable[[Ctx], object]
    error: type[Exception]
    match: str
    # The request reaches the service, which refuses it (so a write may be counted there).
    remote: bool = False


TABLE: list[Bad] = [
    # --- configuration (text or file) ---
    Bad(
        "config",
        "empty file",
        lambda c: c.config(""),
        StratusLabConfigError,
        r"the mandatory \[default\] section is missing",
    ),
    Bad(
        "config",
        "no section header",
        lambda c: c.config("username = a\n"),
        StratusLabConfigError,
        r":1: option outside any section",
    ),
    Bad(
        "config",
        "line without '='",
        lambda c: c.edited("[lal]\n", "[lal]\nno equals here\n"),
        StratusLabConfigError,
        r"expected 'key = value'.*no equals here",
    ),
    Bad(
        "config",
        "not UTF-8",
        lambda c: StratusLabNodeDriver(ex_config_file=io.BytesIO(b"\xff[default]")),
        StratusLabConfigError,
        r"invalid UTF-8 at byte offset 0",
    ),
    Bad(
        "config",
        "no endpoint",
        lambda c: c.config("[default]\nusername = a\npassword = b\n"),
        StratusLabConfigError,
        r"option 'endpoint': missing endpoint",
    ),
    Bad(
        "config",
        "selected section missing",
        lambda c: c.edited("selected_section = lal", "selected_section = nowhere"),
        StratusLabConfigError,
        r"default site 'nowhere' \(from selected_section",
    ),
    Bad(
        "config",
        "endpoint_timeout not a number",
        lambda c: c.edited("[lal]\n", "[lal]\nendpoint_timeout = abc\n"),
        StratusLabConfigError,
        r"'endpoint_timeout': 'abc' is not a positive number of seconds",
    ),
    Bad(
        "config",
        "broken endpoint URL",
        lambda c: c.edited("[lal]\nendpoint = ", "[lal]\nendpoint = http://[::1\n#"),
        StratusLabConfigError,
        r"invalid compute endpoint http://\[::1: invalid IPv6 address",
    ),
    Bad(
        "config",
        "no password and no certificate",
        lambda c: c.edited("password = ", "#password = "),
        StratusLabConfigError,
        r"missing credentials: no password",
    ),
    Bad(
        "config",
        "bad instance type",
        lambda c: c.config(c.cloud.config_text + "\n[instance_types]\nbig = (a, b)\n"),
        StratusLabConfigError,
        r"instance type 'big': expected three integers",
    ),
    Bad(
        "config",
        "ftp pdisk endpoint",
        lambda c: c.edited("pdisk_endpoint = http", "pdisk_endpoint = ftp"),
        StratusLabConfigError,
        r"unsupported scheme 'ftp'",
    ),
    Bad(
        "config",
        "missing file",
        lambda c: StratusLabNodeDriver(ex_config_file=c.tmp / "none.cfg"),
        StratusLabConfigError,
        r"none.cfg does not exist",
    ),
    Bad(
        "config",
        "directory",
        lambda c: StratusLabNodeDriver(ex_config_file=c.tmp),
        StratusLabConfigError,
        r"is a directory, not a configuration file",
    ),
    # --- constructor ---
    Bad(
        "constructor",
        "timeout 0",
        lambda c: c.config(c.cloud.config_text, timeout=0),
        ValueError,
        r"timeout must be a positive number of seconds, not 0",
    ),
    Bad(
        "constructor",
        "timeout NaN",
        lambda c: c.config(c.cloud.config_text, timeout=math.nan),
        ValueError,
        r"timeout must be a positive number of seconds, not NaN",
    ),
    Bad(
        "constructor",
        "timeout as text",
        lambda c: c.config(c.cloud.config_text, timeout="5"),
        TypeError,
        r"must be real number, not str",
    ),
    Bad(
        "constructor",
        "negative retry_delay",
        lambda c: c.config(c.cloud.config_text, retry_delay=-1),
        ValueError,
        r"retry_delay must be ≥ 0",
    ),
    Bad(
        "constructor",
        "backoff below 1",
        lambda c: c.config(c.cloud.config_text, backoff=0.5),
        ValueError,
        r"backoff ≥ 1",
    ),
    Bad(
        "constructor",
        "ex_retries 0",
        lambda c: c.config(c.cloud.config_text, ex_retries=0),
        ValueError,
        r"ex_retries must be a number of attempts from 1 to 100, not 0",
    ),
    Bad(
        "constructor",
        "ex_retries -1",
        lambda c: c.config(c.cloud.config_text, ex_retries=-1),
        ValueError,
        r"ex_retries must be a number of attempts from 1 to 100, not -1",
    ),
    Bad(
        "constructor",
        "config as int",
        lambda c: StratusLabNodeDriver(ex_config_file=123),
        TypeError,
        r"ex_config_file must be a path or an open file, not int",
    ),
    Bad(
        "constructor",
        "two config arguments",
        lambda c: StratusLabNodeDriver(
            ex_config_file=c.cloud.config_file, stratuslab_user_config=c.cloud.config_file
        ),
        TypeError,
        r"give ex_config_file or stratuslab_user_config, not both",
    ),
    Bad(
        "constructor",
        "unknown default location",
        lambda c: c.config(c.cloud.config_text, ex_default_location="nowhere"),
        StratusLabConfigError,
        r"default site 'nowhere' \(from the default site argument\)",
    ),
    Bad(
        "constructor",
        "CA file missing",
        lambda c: c.config(c.cloud.config_text, ex_ca_cert=str(c.tmp / "ca.pem")),
        StratusLabConfigError,
        r"cannot read the CA certificates file .*ca.pem",
    ),
    Bad(
        "constructor",
        "CA file not PEM",
        lambda c: c.config(c.cloud.config_text, ex_ca_cert=c.cloud.config_file),
        StratusLabConfigError,
        r"no certificate found in",
    ),
    Bad(
        "constructor",
        "unknown keyword",
        lambda c: c.config(c.cloud.config_text, ex_bogus=1),
        TypeError,
        r"unexpected keyword argument 'ex_bogus'",
    ),
    # --- names ---
    Bad(
        "names",
        "empty node name",
        lambda c: c.create(""),
        ValueError,
        r"node name must not be empty",
    ),
    Bad(
        "names",
        "blank node name",
        lambda c: c.create("   "),
        ValueError,
        r"node name must not be empty",
    ),
    Bad(
        "names",
        "NUL in node name",
        lambda c: c.create("a\x00b"),
        ValueError,
        r"cannot put NAME in an OpenNebula template: contains the character '\\0'",
    ),
    Bad(
        "names",
        "node name over 128 bytes",
        lambda c: c.create("x" * 129),
        ValueError,
        r"longer than 128 bytes",
    ),
    Bad(
        "names",
        "node name not text",
        lambda c: c.create(5),
        TypeError,
        r"name must be a str, not int",
    ),
    Bad(
        "names",
        "empty volume name",
        lambda c: c.driver.create_volume(1, ""),
        ValueError,
        r"volume name must not be empty",
    ),
    Bad(
        "names",
        "volume name over 40",
        lambda c: c.driver.create_volume(1, "x" * 41),
        ValueError,
        r"volume name is 41 characters long; pdisk tags are at most 40",
    ),
    # --- sizes ---
    Bad(
        "sizes",
        "size as text",
        lambda c: c.create(size="m1.small"),
        TypeError,
        r"size must be a NodeSize, not str",
    ),
    Bad(
        "sizes",
        "size not from list_sizes",
        lambda c: c.create(size=c.sized(0, 1)),
        ValueError,
        r"unknown size 'z' \(known sizes: t1.micro, m1.small, ",
    ),
    Bad(
        "sizes",
        "size None",
        lambda c: c.create(size=None),
        TypeError,
        r"size must be a NodeSize, not NoneType",
    ),
    Bad(
        "sizes",
        "volatile disk of 2**40 GiB",
        lambda c: c.create(ex_volatile_disk_gib=2**40),
        ValueError,
        r"ex_volatile_disk_gib must be between 0 and 4294967295, not 1099511627776",
    ),
    Bad(
        "sizes",
        "size of another driver",
        lambda c: c.create(size=NodeSize("z", "z", 512, 0, None, None, c.other)),
        ValueError,
        r"size 'z' belongs to another driver",
    ),
    Bad(
        "sizes",
        "volume 0 GiB",
        lambda c: c.driver.create_volume(0, "v"),
        ValueError,
        r"volume size must be between 1 and 1024 GiB, not 0",
    ),
    Bad(
        "sizes",
        "volume 1025 GiB",
        lambda c: c.driver.create_volume(1025, "v"),
        ValueError,
        r"volume size must be between 1 and 1024 GiB, not 1025",
    ),
    Bad(
        "sizes",
        "volume -5 GiB",
        lambda c: c.driver.create_volume(-5, "v"),
        ValueError,
        r"volume size must be between 1 and 1024 GiB, not -5",
    ),
    Bad(
        "sizes",
        "volume 2**70 GiB",
        lambda c: c.driver.create_volume(2**70, "v"),
        ValueError,
        r"volume size must be between 1 and 1024 GiB, not 1180591620717411303424",
    ),
    Bad(
        "sizes",
        "volume size as text",
        lambda c: c.driver.create_volume("10", "v"),
        TypeError,
        r"size must be an int number of GiB, not str '10'",
    ),
    Bad(
        "sizes",
        "volume size True",
        lambda c: c.driver.create_volume(True, "v"),
        TypeError,
        r"size must be an int number of GiB, not bool True",
    ),
    Bad(
        "sizes",
        "volume size 1.5",
        lambda c: c.driver.create_volume(1.5, "v"),
        TypeError,
        r"size must be an int number of GiB, not float 1.5",
    ),
    # --- images ---
    Bad(
        "images",
        "empty image",
        lambda c: c.create(image=""),
        ValueError,
        r"image '' is neither a Marketplace identifier",
    ),
    Bad(
        "images",
        "not an identifier",
        lambda c: c.create(image="not-an-image"),
        ValueError,
        r"image 'not-an-image' is neither a Marketplace identifier",
    ),
    Bad(
        "images",
        "ftp URL",
        lambda c: c.create(image="ftp://x/y.img"),
        ValueError,
        r"image 'ftp://x/y.img' is neither",
    ),
    Bad(
        "images",
        "None",
        lambda c: c.create(image=None),
        TypeError,
        r"image must be a NodeImage or an image id, not None",
    ),
    Bad(
        "images",
        "unknown identifier",
        lambda c: c.create(image="A" * 27),
        StratusLabNotFoundError,
        r"create_node \(Marketplace entry\).*no valid Marketplace entry with identifier 'A{27}'",
    ),
    Bad(
        "images",
        "get_image bad id",
        lambda c: c.driver.get_image("bad id!"),
        ValueError,
        r"'bad id!' is not a Marketplace image identifier",
    ),
    # --- locations ---
    Bad(
        "locations",
        "unknown site",
        lambda c: c.create(location="nowhere"),
        ValueError,
        r"unknown location 'nowhere' \(known sites: lal, grnet\)",
    ),
    Bad(
        "locations",
        "location as int",
        lambda c: c.create(location=42),
        TypeError,
        r"location must be a NodeLocation or a site name, not 42",
    ),
    Bad(
        "locations",
        "location of another driver",
        lambda c: c.create(location=NodeLocation("lal", "lal", "FR", c.other)),
        ValueError,
        r"location 'lal' belongs to another driver \(DummyNodeDriver\)",
    ),
    Bad(
        "locations",
        "list_nodes at unknown site",
        lambda c: c.driver.list_nodes(ex_location="nowhere"),
        ValueError,
        r"unknown location 'nowhere'",
    ),
    Bad(
        "locations",
        "list_volumes at unknown site",
        lambda c: c.driver.list_volumes(ex_location="nowhere"),
        ValueError,
        r"unknown location 'nowhere'",
    ),
    Bad(
        "locations",
        "create_volume at unknown site",
        lambda c: c.driver.create_volume(1, "v", location="nowhere"),
        ValueError,
        r"unknown location 'nowhere'",
    ),
    # --- volumes ---
    Bad(
        "volumes",
        "bad visibility",
        lambda c: c.driver.create_volume(1, "v", ex_visibility="secret"),
        ValueError,
        r"visibility must be 'private' or 'public', not 'secret'",
    ),
    Bad(
        "volumes",
        "snapshot",
        lambda c: c.driver.create_volume(1, "v", snapshot="s"),
        ValueError,
        r"cannot create a volume from a snapshot",
    ),
    Bad(
        "volumes",
        "destroy a uuid string",
        lambda c: c.driver.destroy_volume(c.volume.id),
        TypeError,
        r"volume must be a StorageVolume, not str",
    ),
    Bad(
        "volumes",
        "volume without location",
        lambda c: c.driver.destroy_volume(c.volume_at(c.volume.id, None)),
        ValueError,
        r"has no location in its extra",
    ),
    Bad(
        "volumes",
        "path traversal id",
        lambda c: c.driver.destroy_volume(c.volume_at("../../disks", "lal")),
        ValueError,
        r"'../../disks' is not a pdisk volume id",
    ),
    Bad(
        "volumes",
        "unknown volume",
        lambda c: c.driver.destroy_volume(c.volume_at(UNKNOWN_UUID, "lal")),
        StratusLabNotFoundError,
        rf"HTTP 404: disk \({UNKNOWN_UUID}\) does not exist",
        remote=True,
    ),
    Bad(
        "volumes",
        "attach across sites",
        lambda c: c.driver.attach_volume(c.node, c.grnet_volume),
        ValueError,
        r"is at site 'grnet' and node \d+@lal at 'lal'",
    ),
    Bad(
        "volumes",
        "attach to a stopped node",
        lambda c: c.driver.attach_volume(c.stopped, c.volume),
        StratusLabStateError,
        r"site 'lal', attach_volume \(one.vm.info\) at .*: VM \d+ is not in running state "
        r"\(Poweroff\)",
    ),
    Bad(
        "volumes",
        "detach an unattached volume",
        lambda c: c.driver.detach_volume(c.volume),
        StratusLabStateError,
        r"is not attached to any node",
    ),
    # --- nodes ---
    Bad(
        "nodes",
        "garbage node id",
        lambda c: c.driver.destroy_node("garbage"),
        ValueError,
        r"'garbage' is not a StratusLab node id",
    ),
    Bad(
        "nodes",
        "node at unknown site",
        lambda c: c.driver.destroy_node("1@nowhere"),
        ValueError,
        r"unknown location 'nowhere'",
    ),
    Bad(
        "nodes",
        "non-numeric VM id",
        lambda c: c.driver.destroy_node(Node("abc@lal", "x", NodeState.RUNNING, [], [], c.driver)),
        ValueError,
        r"'abc@lal' is not a StratusLab node id",
    ),
    Bad(
        "nodes",
        "negative VM id",
        lambda c: c.driver.ex_get_node("-1@lal"),
        ValueError,
        r"'-1@lal' is not a StratusLab node id",
    ),
    Bad(
        "nodes",
        "VM id over 64 bits",
        lambda c: c.driver.ex_get_node(f"{2**80}@lal"),
        ValueError,
        r"is not a StratusLab node id",
    ),
    Bad(
        "nodes",
        "non-ASCII digits",
        lambda c: c.driver.ex_get_node("١٢@lal"),
        ValueError,
        r"is not a StratusLab node id",
    ),
    Bad(
        "nodes",
        "node as int",
        lambda c: c.driver.destroy_node(123),
        TypeError,
        r"node must be a Node or a node id, not 123",
    ),
    Bad(
        "nodes",
        "VM that does not exist",
        lambda c: c.driver.destroy_node("99999@lal"),
        StratusLabNotFoundError,
        r"destroy_node \(one.vm.info\) at .*: OpenNebula refused \(code 1024\): "
        r"\[VirtualMachineInfo\] Error getting virtual machine \[99999\]",
        remote=True,
    ),
    # --- other create_node options ---
    Bad(
        "options",
        "password auth",
        lambda c: c.create(auth=NodeAuthPassword("pw")),
        ValueError,
        r"take an SSH key \(NodeAuthSSHKey\), not NodeAuthPassword",
    ),
    Bad(
        "options",
        "unknown network",
        lambda c: c.create(ex_network="dmz"),
        ValueError,
        r"unknown network 'dmz' \(public, private or local\)",
    ),
    Bad(
        "options",
        "unknown disks bus",
        lambda c: c.create(ex_disks_bus="floppy"),
        ValueError,
        r"Unknown disks bus type 'floppy'",
    ),
    Bad(
        "options",
        "context key with a space",
        lambda c: c.create(ex_context={"a b": "x"}),
        ValueError,
        r"CONTEXT key 'a b'",
    ),
    Bad(
        "options",
        "negative volatile disk",
        lambda c: c.create(ex_volatile_disk_gib=-1),
        ValueError,
        r"ex_volatile_disk_gib must be between 0 and 4294967295, not -1",
    ),
    Bad(
        "options",
        "volatile disk of 0 GiB",
        lambda c: c.create(ex_volatile_disk_gib=0),
        ValueError,
        r"cannot put volatile DISK size in an OpenNebula template: must be at least 1 MiB",
    ),
    Bad(
        "options",
        "missing public key file",
        lambda c: c.create(auth=None, ex_public_key_file=str(c.tmp / "none.pub")),
        ValueError,
        r"no SSH public key: .*cannot read .*none.pub",
    ),
    Bad(
        "options",
        "empty public key",
        lambda c: c.create(auth=NodeAuthSSHKey("")),
        ValueError,
        r"the SSH public key is empty",
    ),
]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    with LocalCloud(sites=["lal", "grnet"], boot_step=0.0) as cloud:
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
        size = driver.list_sizes()[0]
        node = driver.create_node("keep", size, IMAGE, auth=KEY)
        stopped = driver.create_node("stopped", size, IMAGE, auth=KEY)
        driver.stop_node(stopped)
        volume = driver.create_volume(1, "keep")
        grnet_volume = driver.create_volume(1, "keep", location="grnet")
        yield Ctx(
            cloud,
            driver,
            size,
            node,
            stopped,
            volume,
            grnet_volume,
            DummyNodeDriver(0),
            tmp_path_factory.mktemp("bad"),
        )


WRITES = [
    ("compute", "one.vm.allocate"),
    ("compute", "one.vm.action"),
    ("pdisk", "POST /disks"),
    ("pdisk", "DELETE /disks"),
]


def state(c: Ctx, writes: bool = True) -> object:
    out: dict[str, object] = {}
    for site in c.cloud.sites:
        out[site] = (
            {i: c.cloud.vm_state(site, i) for i in c.cloud.vm_ids(site)},
            sorted((d["uuid"], d["tag"], d["size"], len(d["mounts"])) for d in c.cloud.disks(site)),
            [c.cloud.request_count(site, service, op) for service, op in WRITES]
            if writes
            else None,
        )
    return out


@pytest.mark.parametrize("bad", TABLE, ids=[f"{b.category}-{b.name}" for b in TABLE])
def test_bad_input(ctx: Ctx, bad: Bad) -> None:
    before = state(ctx, writes=not bad.remote)
    with pytest.raises(bad.error) as info:
        bad.call(ctx)
    assert type(info.value) is bad.error
    assert re.search(bad.match, str(info.value)), str(info.value)
    assert state(ctx, writes=not bad.remote) == before


def test_the_table_is_big_enough() -> None:
    categories = {b.category for b in TABLE}
    assert categories == {
        "config",
        "constructor",
        "names",
        "sizes",
        "images",
        "locations",
        "volumes",
        "nodes",
        "options",
    }
    assert len(TABLE) >= 40
    assert len({(b.category, b.name) for b in TABLE}) == len(TABLE)


@pytest.mark.parametrize(
    "name",
    ['a", CPU = "64', "a\nCPU = 64", "a]\nCONTEXT = [ X = 1", "$NAME${x}", "é \t ü"],
    ids=["quote", "newline", "bracket", "dollar", "unicode"],
)
def test_a_hostile_node_name_is_escaped_and_adds_no_attribute(ctx: Ctx, name: str) -> None:
    node = ctx.create(name)
    try:
        assert node.name == name
        again = ctx.driver.ex_get_node(node.id)  # as the server parsed the template
        assert again.name == name
        assert again.extra["vcpu"] == ctx.size.extra["cpu"]
        assert again.extra["memory_mib"] == ctx.size.ram
        assert [n["network"] for n in again.extra["nics"]] == ["public"]
    finally:
        ctx.driver.destroy_node(node)


def test_a_name_that_cannot_be_written_is_refused_not_mangled(ctx: Ctx) -> None:
    before = state(ctx)
    with pytest.raises(ValueError, match=r"a backslash before a double quote or at the end"):
        ctx.create("a\\")
    assert state(ctx) == before
