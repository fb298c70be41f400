"""Plain OpenNebula sites (``site_type = opennebula``) end to end, on a local cloud that mixes a
StratusLab site (3.8 behind one-proxy, pdisk, Marketplace) and a plain OpenNebula 7.4 daemon:
images and templates from the daemon's pools, create_node from both, volumes as persistent
DATABLOCK images hot-plugged, networks, every node action, and the emulator's 7.4 documents
checked against OpenNebula 7.4.0's own XSDs.
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import pytest
import xmlschema
from helpers import FIXTURES, wait_for
from libcloud.compute.base import NodeAuthSSHKey
from libcloud.compute.types import NodeState, StorageVolumeState

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
from stratuslab_libcloud.errors import StratusLabConfigError, StratusLabProviderError
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

XSD = FIXTURES / "opennebula-xsd" / "7.4.0"
NAMESPACE = "http://opennebula.org/XMLSchema"
SESSION = f"{DEFAULT_USER}:{DEFAULT_PASSWORD}"


@pytest.fixture
def mixed() -> Iterator[LocalCloud]:
    options = {"one": {"version": "7.4", "site_type": "opennebula"}}
    with LocalCloud(["lal", "one"], site_options=options, boot_step=0.01) as cloud:
        yield cloud


@pytest.fixture
def mdriver(mixed: LocalCloud) -> StratusLabNodeDriver:
    return StratusLabNodeDriver(ex_config_file=mixed.config_file)


def rpc2(cloud: LocalCloud, site: str = "one") -> Any:
    return xmlrpc.client.ServerProxy(cloud.endpoints(site)["rpc2"])


def size(driver: StratusLabNodeDriver, name: str = "m1.small") -> Any:
    return next(s for s in driver.list_sizes() if s.id == name)


def test_config_sections_and_locations(mixed: LocalCloud, mdriver: StratusLabNodeDriver) -> None:
    text = mixed.config_text
    assert "site_type = opennebula" in text
    assert f"endpoint = {mixed.endpoints('one')['rpc2']}" in text
    kinds = {loc.id: loc.extra["site_type"] for loc in mdriver.list_locations()}
    assert kinds == {"lal": "stratuslab", "one": "opennebula"}


def test_constructor_form_and_bad_site_types(mixed: LocalCloud) -> None:
    url = mixed.endpoints("one")["rpc2"]
    drv = StratusLabNodeDriver(DEFAULT_USER, DEFAULT_PASSWORD, host=url, ex_site_type="opennebula")
    assert drv.ex_default_location.extra["site_type"] == "opennebula"
    assert [i.id for i in drv.list_images()][:1] == ["image-0@default"]
    with pytest.raises(StratusLabConfigError, match="site_type"):
        StratusLabNodeDriver(DEFAULT_USER, DEFAULT_PASSWORD, host=url, ex_site_type="aws")
    # A plain site's endpoint is the daemon's /RPC2 URL.
    proxy = mixed.endpoints("one")["compute"]
    with pytest.raises(StratusLabConfigError, match="RPC2"):
        StratusLabNodeDriver(DEFAULT_USER, DEFAULT_PASSWORD, host=proxy, ex_site_type="opennebula")


def test_images_and_templates(mdriver: StratusLabNodeDriver) -> None:
    images = mdriver.list_images(location="one")
    assert [i.id for i in images] == ["image-0@one", "template-0@one"]
    image, template = images
    assert image.name == "ttylinux"
    assert image.extra["kind"] == "image"
    assert image.extra["type"] == "OS"
    assert image.extra["size_mib"] == 1024
    assert image.extra["owner"] == "oneadmin"
    assert image.extra["datastore"] == "default"
    assert image.extra["description"] == "dummy ttylinux"
    assert template.name == "tmpl1"
    assert template.extra["kind"] == "template"
    assert (template.extra["cpu"], template.extra["memory_mib"]) == ("1", "64")
    got = mdriver.get_image("template-0@one", location="one")
    assert (got.id, got.name) == ("template-0@one", "tmpl1")
    assert mdriver.get_image("image-0", location="one").name == "ttylinux"
    with pytest.raises(ValueError, match="not an OpenNebula image"):
        mdriver.get_image("ttylinux", location="one")
    with pytest.raises(ValueError, match="belongs to site 'lal'"):
        mdriver.get_image("image-0@lal", location="one")
    with pytest.raises(StratusLabProviderError, match=r"one\.image\.info.*Error getting image"):
        mdriver.get_image("image-99@one", location="one")
    # The StratusLab site still lists its Marketplace.
    assert all("@" not in i.id for i in mdriver.list_images(location="lal"))


def test_create_node_from_an_image(
    mixed: LocalCloud, mdriver: StratusLabNodeDriver, ssh_public_key: str
) -> None:
    node = mdriver.create_node(
        "web 1 [a], (b) = c @ d é ☃",
        size(mdriver),
        "image-0@one",
        location="one",
        auth=NodeAuthSSHKey(ssh_public_key),
        ex_network="public",
        ex_context={"MOTD": 'x", INJ="y ] $NAME'},
    )
    assert node.id.endswith("@one")
    assert node.name == "web 1 [a], (b) = c @ d é ☃"
    running = mdriver.wait_until_running([node], wait_period=0.05, timeout=10)[0][0]
    assert running.state == NodeState.RUNNING
    assert running.public_ips
    vm = int(node.id.split("@")[0])
    text = mixed.vm_template("one", vm) or ""
    assert 'DISK = [ IMAGE_ID = "0" ]' in text
    assert 'NIC = [ NETWORK_ID = "0" ]' in text
    info = rpc2(mixed).one.vm.info(SESSION, vm)[1]
    assert "<NAME>web 1 [a], (b) = c @ d é ☃</NAME>" in info
    assert f"<SSH_PUBLIC_KEY><![CDATA[{ssh_public_key}]]></SSH_PUBLIC_KEY>" in info
    assert "<NETWORK><![CDATA[YES]]></NETWORK>" in info
    # The context value is stored verbatim, $NAME substituted as oned does; nothing injected.
    assert '<MOTD><![CDATA[x", INJ="y ] web 1 [a], (b) = c @ d é ☃]]></MOTD>' in info
    assert "<INJ>" not in info
    # The node lists on the plain site, not on the other.
    assert [n.id for n in mdriver.list_nodes(ex_location="one")] == [node.id]
    assert mdriver.list_nodes(ex_location="lal") == []


@pytest.mark.parametrize(
    "name", ['a"b', "a\\b", "a$b", "a;b", "a/b", "a:b", "a'b", "a#b", "a<b", "a&b", "a\nb", "😀"]
)
def test_hostile_names_are_refused_before_sending(
    mixed: LocalCloud, mdriver: StratusLabNodeDriver, ssh_public_key: str, name: str
) -> None:
    with pytest.raises(ValueError, match="NAME"):
        mdriver.create_node(
            name,
            size(mdriver),
            "image-0@one",
            location="one",
            auth=NodeAuthSSHKey(ssh_public_key),
        )
    assert mixed.vm_ids("one") == []


def test_create_node_from_a_template(
    mixed: LocalCloud, mdriver: StratusLabNodeDriver, ssh_public_key: str
) -> None:
    node = mdriver.create_node(
        "from-template",
        size(mdriver, "c1.medium"),
        "template-0@one",
        location="one",
        auth=NodeAuthSSHKey(ssh_public_key),
        ex_network="1",
        ex_context={"ROLE": "worker"},
    )
    mdriver.wait_until_running([node], wait_period=0.05, timeout=10, ssh_interface="private_ips")
    vm = int(node.id.split("@")[0])
    info = rpc2(mixed).one.vm.info(SESSION, vm)[1]
    assert "<NAME>from-template</NAME>" in info
    # The template's disk, the overrides' size, NIC and context.
    assert "<IMAGE><![CDATA[ttylinux]]></IMAGE>" in info
    assert "<NETWORK><![CDATA[private]]></NETWORK>" in info
    assert "<ROLE><![CDATA[worker]]></ROLE>" in info
    medium = size(mdriver, "c1.medium")
    assert f"<MEMORY><![CDATA[{medium.ram}]]></MEMORY>" in info
    assert "<TEMPLATE_ID><![CDATA[0]]></TEMPLATE_ID>" in info


def test_node_image_is_the_node_image_id(
    mdriver: StratusLabNodeDriver, ssh_public_key: str
) -> None:
    # As on StratusLab sites, node.image.id is what get_image takes: the pool image of the
    # node's root disk (a template's too: the short vmpool.info body names no template), the
    # same on every path that returns a node.
    auth = NodeAuthSSHKey(ssh_public_key)
    from_image = mdriver.create_node(
        "img", size(mdriver), "image-0@one", location="one", auth=auth, ex_network="public"
    )
    from_template = mdriver.create_node(
        "tpl", size(mdriver), "template-0@one", location="one", auth=auth, ex_network="public"
    )
    for node in (from_image, from_template):
        assert node.image is not None and node.image.id == "image-0@one"
        got = mdriver.ex_get_node(node.id)
        assert got.image is not None and got.image.id == "image-0@one"
    listed = {n.name: n.image.id for n in mdriver.list_nodes(ex_location="one") if n.image}
    assert listed == {"img": "image-0@one", "tpl": "image-0@one"}
    image = mdriver.get_image(from_image.image.id)
    assert (image.name, image.extra["kind"]) == ("ttylinux", "image")


def test_unknown_network_and_image(mdriver: StratusLabNodeDriver, ssh_public_key: str) -> None:
    auth = NodeAuthSSHKey(ssh_public_key)
    with pytest.raises(ValueError, match="no virtual network 'nope'"):
        mdriver.create_node(
            "x", size(mdriver), "image-0@one", location="one", auth=auth, ex_network="nope"
        )
    with pytest.raises(StratusLabProviderError, match="does not exist"):
        mdriver.create_node("x", size(mdriver), "image-77@one", location="one", auth=auth)
    with pytest.raises(ValueError, match="not an OpenNebula image"):
        mdriver.create_node("x", size(mdriver), "ttylinux", location="one", auth=auth)


def test_networks(mdriver: StratusLabNodeDriver) -> None:
    nets = mdriver.ex_list_networks()
    assert [(n.id, n.name) for n in nets] == [
        ("0@one", "public"),
        ("1@one", "private"),
        ("2@one", "local"),
    ]
    ar = nets[0].extra["address_ranges"][0]
    assert ar["type"] == "IP4" and ar["size"] > 0
    assert nets[0].extra["used_leases"] == 0
    with pytest.raises(ValueError, match="StratusLab site"):
        mdriver.ex_list_networks("lal")


def test_volumes_attach_detach_destroy(
    mixed: LocalCloud, mdriver: StratusLabNodeDriver, ssh_public_key: str
) -> None:
    node = mdriver.create_node(
        "vm-with-disk",
        size(mdriver),
        "image-0@one",
        location="one",
        auth=NodeAuthSSHKey(ssh_public_key),
        ex_network="public",
    )
    mdriver.wait_until_running([node], wait_period=0.05, timeout=10)
    volume = mdriver.create_volume(2, "data one", location="one")
    assert volume.id.startswith("volume-") and volume.id.endswith("@one")
    assert (volume.name, volume.size, volume.state) == ("data one", 2, StorageVolumeState.AVAILABLE)
    assert volume.extra["location"] == "one"
    listed = mdriver.list_volumes(ex_location="one")
    assert [v.id for v in listed] == [volume.id]
    # Both kinds of site in one listing: the StratusLab site's pdisk volumes are there too.
    everything = mdriver.list_volumes()
    assert volume.id in [v.id for v in everything]

    assert mdriver.attach_volume(node, volume, device="/dev/sdc")
    assert volume.state == StorageVolumeState.INUSE
    assert volume.extra["node"] == node.id
    assert volume.extra["device"] == "sdc"
    assert volume.extra["disk_id"] == 1
    # Locked while used: the daemon refuses to delete it, and a second VM cannot take it.
    with pytest.raises(StratusLabProviderError, match="VMs using it"):
        mdriver.destroy_volume(volume)
    wait_for(lambda: mdriver.ex_get_node(node.id).state == NodeState.RUNNING, what="hot-plug done")
    (again,) = mdriver.list_volumes(ex_location="one")
    assert again.state == StorageVolumeState.INUSE
    assert again.extra["attachments"] == [(node.id, 1, "sdc")]

    assert mdriver.detach_volume(volume)
    assert volume.state == StorageVolumeState.AVAILABLE
    (free,) = mdriver.list_volumes(ex_location="one")
    assert free.state == StorageVolumeState.AVAILABLE
    wait_for(
        lambda: mdriver.ex_get_node(node.id).state == NodeState.RUNNING, what="hot-unplug done"
    )
    with pytest.raises(ValueError, match="not attached"):
        mdriver.detach_volume(volume)
    assert mdriver.destroy_volume(volume)
    assert mdriver.list_volumes(ex_location="one") == []
    with pytest.raises(ValueError, match="NAME"):
        mdriver.create_volume(1, "a/b", location="one")


def test_every_node_action(mdriver: StratusLabNodeDriver, ssh_public_key: str) -> None:
    node = mdriver.create_node(
        "actions",
        size(mdriver),
        "image-0@one",
        location="one",
        auth=NodeAuthSSHKey(ssh_public_key),
        ex_network="public",
    )
    mdriver.wait_until_running([node], wait_period=0.05, timeout=10)

    def state() -> NodeState:
        return mdriver.ex_get_node(node.id).state

    assert mdriver.reboot_node(node)
    wait_for(lambda: state() == NodeState.RUNNING, what="rebooted")
    assert mdriver.stop_node(node)
    wait_for(lambda: state() == NodeState.STOPPED, what="powered off")
    # Refusals come back as provider errors with the 7.x message.
    with pytest.raises(StratusLabProviderError, match="not available for state POWEROFF"):
        mdriver.reboot_node(node)
    assert mdriver.start_node(node)
    wait_for(lambda: state() == NodeState.RUNNING, what="resumed")
    assert mdriver.destroy_node(node)
    wait_for(lambda: mdriver.list_nodes(ex_location="one") == [], what="terminated")


def test_seven_only_states_reach_the_node(
    mixed: LocalCloud, mdriver: StratusLabNodeDriver, ssh_public_key: str
) -> None:
    node = mdriver.create_node(
        "undeployed",
        size(mdriver),
        "image-0@one",
        location="one",
        auth=NodeAuthSSHKey(ssh_public_key),
        ex_network="public",
    )
    mdriver.wait_until_running([node], wait_period=0.05, timeout=10)
    vm = int(node.id.split("@")[0])
    assert rpc2(mixed).one.vm.action(SESSION, "undeploy", vm)[0]
    wait_for(lambda: mdriver.ex_get_node(node.id).extra["state"] == 9, what="UNDEPLOYED")
    got = mdriver.ex_get_node(node.id)
    assert (got.state, got.extra["state_name"]) == (NodeState.STOPPED, "UNDEPLOYED")
    assert mdriver.start_node(got)
    wait_for(lambda: mdriver.ex_get_node(node.id).state == NodeState.RUNNING, what="redeployed")


def test_seven_replies_shapes(mixed: LocalCloud) -> None:
    one = rpc2(mixed).one
    assert one.system.version(SESSION) == [True, "7.4.0", 0]
    assert one.vm.info(SESSION, 9999) == [
        False,
        "[one.vm.info] Error getting virtual machine [9999].",
        1024,
        9999,
        -1,
    ]
    assert one.vm.action(SESSION, "shutdown", 0)[1].startswith("[one.vm.info]") is False
    assert one.vmpool.info(SESSION, -2, -1, -1, 99)[1:3] == [
        "[one.vmpool.info] Incorrect state filter 99",
        4096,
    ]
    with pytest.raises(xmlrpc.client.Fault, match="Not enough parameters"):
        one.vmpool.info(SESSION, -2, -1, -1)
    # Descending order.
    for _ in range(3):
        one.vm.allocate(SESSION, 'NAME="n" CPU=1 MEMORY=64 DISK=[IMAGE_ID=0]')
    pool = one.vmpool.info(SESSION, -2, -1, -1, -1)[1]
    assert pool.index("<ID>2</ID>") < pool.index("<ID>1</ID>") < pool.index("<ID>0</ID>")
    ok, message, code, *_ = one.vm.action(SESSION, "finalize", 0)
    assert (ok, message, code) == (
        False,
        '[one.vm.action] Action "finalize" is not supported',
        2048,
    )
    # recover is for oneadmin's group only.
    assert one.vm.recover(SESSION, 0, 3)[2] == 512


def test_seven_documents_validate_against_the_7_4_xsds(mixed: LocalCloud) -> None:
    one = rpc2(mixed).one
    vm = one.vm.allocate(SESSION, 'NAME="x" CPU=1 MEMORY=64 DISK=[IMAGE_ID=0] NIC=[NETWORK_ID=0]')[
        1
    ]
    wait_for(lambda: "<LCM_STATE>3</LCM_STATE>" in one.vm.info(SESSION, vm)[1], what="RUNNING")
    image = one.image.allocate(SESSION, 'NAME="d" TYPE=DATABLOCK SIZE=8 PERSISTENT=YES', 1)[1]
    assert one.vm.attach(SESSION, vm, f'DISK=[IMAGE_ID="{image}"]')[0]

    def check(xsd: str, doc: str) -> None:
        end = doc.index(">")
        schema = xmlschema.XMLSchema(XSD / xsd)
        schema.validate(f'{doc[:end]} xmlns="{NAMESPACE}"{doc[end:]}')

    check("vm.xsd", one.vm.info(SESSION, vm)[1])
    check("vm_pool.xsd", one.vmpool.info(SESSION, -2, -1, -1, -1)[1])
    check("vm_pool_extended.xsd", one.vmpool.infoextended(SESSION, -2, -1, -1, -1)[1])
    check("image_pool.xsd", one.imagepool.info(SESSION, -2, -1, -1)[1])
    check("image.xsd", one.image.info(SESSION, image)[1])
    check("vmtemplate_pool.xsd", one.templatepool.info(SESSION, -2, -1, -1)[1])
    check("vnet_pool.xsd", one.vnpool.info(SESSION, -2, -1, -1)[1])
    check("vnet.xsd", one.vn.info(SESSION, 0)[1])


def test_pyone_drives_the_seven_emulator(mixed: LocalCloud) -> None:
    pyone = pytest.importorskip("pyone", reason="pip install '.[test]' installs pyone")
    server = pyone.OneServer(mixed.endpoints("one")["rpc2"], session=SESSION)
    assert server.system.version() == "7.4.0"
    # tmpl1's NIC names "public", which belongs to oneadmin: another user must say which one.
    with pytest.raises(pyone.OneInternalException, match="NETWORK_UNAME"):
        server.template.instantiate(0, "by-pyone", False, "")
    vm = server.template.instantiate(0, "by-pyone", False, "NIC=[NETWORK_ID=0]")
    wait_for(lambda: server.vm.info(vm).LCM_STATE == 3, what="RUNNING")
    info = server.vm.info(vm)
    assert info.NAME == "by-pyone"
    assert info.TEMPLATE["DISK"]["IMAGE"] == "ttylinux"
    assert [v.ID for v in server.vmpool.infoextended(-2, -1, -1, -1).VM] == [vm]
    images = server.imagepool.info(-2, -1, -1)
    assert [i.NAME for i in images.IMAGE] == ["datablock1", "ttylinux"]
    assert [t.NAME for t in server.templatepool.info(-2, -1, -1).VMTEMPLATE] == ["tmpl1"]
    assert [n.NAME for n in server.vnpool.info(-2, -1, -1).VNET] == ["local", "private", "public"]
    block = server.image.allocate('NAME="pv" TYPE=DATABLOCK SIZE=8 PERSISTENT=YES', 1)
    server.vm.attach(vm, f"DISK=[IMAGE_ID={block}]")
    assert server.image.info(block).RUNNING_VMS == 1
    with pytest.raises(pyone.OneActionException):
        server.image.delete(block)
    wait_for(lambda: server.vm.info(vm).LCM_STATE == 3, what="hot-plug done")
    server.vm.detach(vm, 1)
    server.image.delete(block)
    wait_for(lambda: server.vm.info(vm).LCM_STATE == 3, what="hot-unplug done")
    server.vm.action("terminate-hard", vm)
    wait_for(lambda: server.vm.info(vm).STATE == 6, what="DONE")
    with pytest.raises(pyone.OneNoExistsException):
        server.vm.info(999)
