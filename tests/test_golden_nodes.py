"""Golden libcloud ``Node`` objects, field by field.

The real captures themselves (every 3.8.5 ``vm-info*``/``vmpool-info*`` document and StratusLab's
3.2 VM sample) are decoded into node records by the Rust golden test
``driver::tests::golden_nodes_from_every_real_capture``. Here the same VMs are made at the local
cloud with the templates they were allocated with — the 3.8.5 capture's own template
(``tests/fixtures/opennebula-3.8.5/vm-template-1.txt``, sent by an independent client, Python's
``xmlrpc.client``) and a template rebuilt from the StratusLab sample's TEMPLATE — and the
driver's ``list_nodes`` must give complete ``Node`` objects (ids, states, IPs, ``NodeSize``,
``NodeImage``, every ``extra`` key): the layer above the records (``convert.rs``, ``driver.py``).
"""

from __future__ import annotations

import xmlrpc.client

import pytest
from conftest import CloudFactory
from helpers import FIXTURES, wait_for
from libcloud.compute.base import Node
from libcloud.compute.types import NodeState

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

SESSION = f"{DEFAULT_USER}:{DEFAULT_PASSWORD}"

# The StratusLab sample VM's TEMPLATE as it was allocated (keys and values from
# tests/fixtures/stratuslab/compute/vm-with-extra-disk-in-pdisk.xml; SLIPSTREAM context trimmed).
STRATUSLAB_TEMPLATE = """CPU = 2
VCPU = 2
MEMORY = 16384
RANK = "- RUNNING_VMS"
NAME = "withlun.1:a9bc274f-42c0-4e76-ae16-0cc2fbe92a46"
DISK = [ SOURCE = "https://marketplace.stratuslab.eu/metadata/Pd1C0IktTPRXFPGlEHfxrF7gxOF",
  TARGET = "vda", SAVE = no, READONLY = "no", DRIVER = "raw" ]
DISK = [ TYPE = swap, SIZE = 1536, TARGET = "vdb", READONLY = "no" ]
DISK = [ SOURCE = pdisk:154.48.152.10:8445/95b75092-17d2-459f-9fa0-cd1deaa721f1, TARGET = vdc,
  TYPE = block ]
NIC = [ NETWORK_UNAME = oneadmin, NETWORK = "public" ]
GRAPHICS = [ PORT = "-1", TYPE = "vnc" ]
CONTEXT = [ PUBLIC_KEY = "ssh-rsa abc", TARGET = "hdd" ]
"""


def allocate(cloud: LocalCloud, site: str, template: str) -> int:
    rpc = xmlrpc.client.ServerProxy(cloud.endpoints(site)["rpc2"])
    ok, vm_id, code = rpc.one.vm.allocate(SESSION, template)
    assert (ok, code) == (True, 0), vm_id
    return int(vm_id)


def running_node(driver: StratusLabNodeDriver, node_id: str) -> Node:
    def find() -> Node | None:
        for n in driver.list_nodes():
            if n.id == node_id and n.state == NodeState.RUNNING:
                return n
        return None

    node = wait_for(find, timeout=20, what=f"{node_id} running")
    assert isinstance(node, Node)
    return node


@pytest.fixture
def cloud38(make_cloud: CloudFactory) -> LocalCloud:
    return make_cloud(sites=["lal", "grnet"], boot_step=0.02, version="3.8")


def test_the_captured_3_8_5_template_becomes_this_node(cloud38: LocalCloud) -> None:
    template = (FIXTURES / "opennebula-3.8.5" / "vm-template-1.txt").read_text()
    assert allocate(cloud38, "grnet", template) == 0
    driver = StratusLabNodeDriver(ex_config_file=cloud38.config_file)
    node = running_node(driver, "0@grnet")

    assert node.id == "0@grnet"
    assert node.name == "probe-vm-1"
    assert node.state == NodeState.RUNNING
    # NETWORK_ID 0 is the site's "public" network: the second site's slice starts at .110.
    assert node.public_ips == ["192.0.2.110"]
    assert node.private_ips == []
    assert node.driver is driver
    assert node.size is not None
    assert (node.size.id, node.size.name) == ("custom-1cpu-256mib-128swap",) * 2
    assert (node.size.ram, node.size.disk, node.size.bandwidth, node.size.price) == (
        256,
        1,
        None,
        None,
    )
    assert node.size.extra == {"cpu": 1, "swap_mib": 128}
    assert node.image is not None
    assert (node.image.id, node.image.name) == ("ttylinux", "ttylinux")
    assert node.created_at is not None
    assert node.extra == {
        "host": "node-1.grnet.localcloud",
        "state": 3,
        "state_name": "ACTIVE",
        "lcm_state": 3,
        "lcm_state_name": "RUNNING",
        "summary": "Running",
        "owner": "alice",
        "group": "users",
        "deploy_id": "node-1.grnet.localcloud:probe-vm-1:dummy",
        "cpu": 0.5,
        "vcpu": 1,
        "memory_mib": 256,
        "nics": [{"network": "public", "ip": "192.0.2.110", "mac": "02:00:c0:00:02:6e"}],
        "volumes": {},
        "location": "grnet",
        "vm_id": 0,
    }
    # one.vm.info (ex_get_node) and one.vmpool.info (list_nodes) give the same node.
    again = driver.ex_get_node("0@grnet")
    assert (again.uuid, again.extra, repr(again.size), repr(again.image)) == (
        node.uuid,
        node.extra,
        repr(node.size),
        repr(node.image),
    )


def test_the_stratuslab_sample_template_becomes_this_node() -> None:
    with LocalCloud(sites=["lal"], boot_step=0.02, version="3.2") as cloud:
        assert allocate(cloud, "lal", STRATUSLAB_TEMPLATE) == 0
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
        node = running_node(driver, "0@lal")

    assert node.name == "withlun.1:a9bc274f-42c0-4e76-ae16-0cc2fbe92a46"
    assert node.public_ips == ["192.0.2.10"]
    assert node.private_ips == []
    assert node.size is not None
    assert (node.size.id, node.size.ram, node.size.disk) == (
        "custom-2cpu-16384mib-1536swap",
        16384,
        2,
    )
    assert node.size.extra == {"cpu": 2, "swap_mib": 1536}
    assert node.image is not None
    assert node.image.id == "Pd1C0IktTPRXFPGlEHfxrF7gxOF"
    assert node.extra["volumes"] == {"95b75092-17d2-459f-9fa0-cd1deaa721f1": "vdc"}
    assert node.extra["cpu"] == 2.0
    assert node.extra["vcpu"] == 2
    assert node.extra["memory_mib"] == 16384
    assert node.extra["host"] == "node-1.lal.localcloud"
    assert (node.extra["state_name"], node.extra["lcm_state_name"]) == ("ACTIVE", "RUNNING")
    assert node.extra["nics"] == [
        {"network": "public", "ip": "192.0.2.10", "mac": "02:00:c0:00:02:0a"}
    ]
