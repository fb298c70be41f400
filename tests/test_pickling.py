"""pickle and copy.deepcopy of the driver and its objects, and no password in any pickle."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest
from libcloud.compute.base import (
    Node,
    NodeAuthSSHKey,
    NodeImage,
    NodeLocation,
    NodeSize,
    StorageVolume,
)

from stratuslab_libcloud import LocalCloud, StratusLabConfigError, StratusLabNodeDriver
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPicklexxxxxxxxxxxxxxxxxxxxxxxxx p@k")


def _objects(driver: StratusLabNodeDriver, cloud: LocalCloud) -> dict[str, Any]:
    cloud.seed("lal", images=1)
    node = driver.create_node("pickled", driver.list_sizes()[1], IMAGE, auth=KEY, location="lal")
    volume = driver.create_volume(1, "pickled", location="lal")
    return {
        "node": node,
        "size": driver.list_sizes()[0],
        "image": driver.list_images("lal")[0],
        "location": driver.list_locations()[1],
        "volume": volume,
        "driver": driver,
    }


def test_every_object_pickles_and_a_file_based_driver_is_rebuilt(
    driver: StratusLabNodeDriver, cloud: LocalCloud
) -> None:
    objects = _objects(driver, cloud)
    data = pickle.dumps(objects)
    back = pickle.loads(data)
    node: Node = back["node"]
    assert isinstance(node, Node) and node.id == objects["node"].id
    assert node.name == "pickled" and node.size.id == objects["node"].size.id
    assert isinstance(back["size"], NodeSize) and back["size"].ram == objects["size"].ram
    assert isinstance(back["image"], NodeImage) and back["image"].id == objects["image"].id
    assert isinstance(back["location"], NodeLocation)
    assert back["location"].id == objects["location"].id
    assert isinstance(back["volume"], StorageVolume) and back["volume"].id == objects["volume"].id
    # One driver for all of them (pickle's memo), rebuilt from the file: it works.
    rebuilt = back["driver"]
    assert isinstance(rebuilt, StratusLabNodeDriver) and rebuilt is not driver
    assert all(back[k].driver is rebuilt for k in ("node", "size", "image", "location", "volume"))
    assert node.driver.ex_get_node(node.id).name == "pickled"
    assert [v.id for v in rebuilt.list_volumes("lal")] == [objects["volume"].id]
    assert rebuilt.destroy_node(node)


def test_deepcopy_copies_the_objects_and_shares_the_driver(
    driver: StratusLabNodeDriver, cloud: LocalCloud
) -> None:
    objects = _objects(driver, cloud)
    for name, obj in objects.items():
        copied = copy.deepcopy(obj)
        if name == "driver":
            assert copied is driver and copy.copy(driver) is driver
            continue
        assert copied is not obj and copied.id == obj.id and copied.driver is driver
    node = copy.deepcopy(objects["node"])
    node.extra["mine"] = 1
    assert "mine" not in objects["node"].extra
    assert node.driver.ex_get_node(node).id == node.id


def _pickle_of_everything(driver: StratusLabNodeDriver, cloud: LocalCloud) -> bytes:
    return pickle.dumps(_objects(driver, cloud))


def test_no_pickle_holds_a_password(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = DEFAULT_PASSWORD.encode()
    from_file = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    from_args = StratusLabNodeDriver(
        DEFAULT_USER, DEFAULT_PASSWORD, ex_config_file=cloud.config_file
    )
    monkeypatch.setenv("STRATUSLAB_PASSWORD", DEFAULT_PASSWORD)
    from_env = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    monkeypatch.delenv("STRATUSLAB_PASSWORD")
    with open(cloud.config_file, encoding="utf-8") as handle:
        from_open_file = StratusLabNodeDriver(ex_config_file=handle)
    for driver in (from_file, from_args, from_env, from_open_file):
        data = _pickle_of_everything(driver, cloud)
        assert secret not in data
        assert DEFAULT_PASSWORD.encode("utf-16-le") not in data
        assert b"[default]" not in data  # nor the configuration's text


@pytest.mark.parametrize("source", ["argument", "environment", "open file", "proxy password"])
def test_a_driver_whose_password_is_not_in_a_file_unpickles_into_one_that_raises(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    ends = cloud.endpoints("lal")
    if source == "argument":
        driver = StratusLabNodeDriver(
            DEFAULT_USER,
            DEFAULT_PASSWORD,
            host=ends["compute"],
            ex_pdisk_endpoint=ends["pdisk"],
            ex_marketplace_endpoint=ends["marketplace"],
        )
        why = "given as an argument"
    elif source == "environment":
        monkeypatch.setenv("STRATUSLAB_PASSWORD", DEFAULT_PASSWORD)
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
        monkeypatch.delenv("STRATUSLAB_PASSWORD")
        why = "environment"
    elif source == "open file":
        with open(cloud.config_file, encoding="utf-8") as handle:
            driver = StratusLabNodeDriver(ex_config_file=handle)
        why = "open file"
    else:
        driver = StratusLabNodeDriver(
            ex_config_file=cloud.config_file, proxy_url="http://u:proxy-pw@127.0.0.1:9"
        )
        why = "proxy URL"
    node = (
        driver.create_node("n", driver.list_sizes()[0], IMAGE, auth=KEY)
        if source != ("proxy password")
        else None
    )
    back = pickle.loads(pickle.dumps(driver))
    assert b"proxy-pw" not in pickle.dumps(driver)
    # What needs no site still works; every call that talks to a site raises, clearly.
    assert [loc.id for loc in back.list_locations()] == [loc.id for loc in driver.list_locations()]
    assert back.key == driver.key and "StratusLabNodeDriver" in repr(back)
    for call in (
        back.list_nodes,
        back.list_volumes,
        back.list_images,
        lambda: back.create_node("x", back.list_sizes()[0], IMAGE, auth=KEY),
    ):
        with pytest.raises(
            StratusLabConfigError, match=f"unpickled.*{why}.*never holds a password"
        ):
            call()
    if node is not None:
        moved = pickle.loads(pickle.dumps(node))
        with pytest.raises(StratusLabConfigError):
            moved.driver.ex_get_node(moved.id)
        assert driver.destroy_node(node)
    # A pickle of the unusable driver is as unusable.
    with pytest.raises(StratusLabConfigError):
        pickle.loads(pickle.dumps(back)).list_nodes()


def test_a_driver_rebuilt_from_its_pickle_keeps_its_arguments(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A relative path is made absolute: the pickle works from another directory.
    monkeypatch.chdir(Path(cloud.config_file).parent)
    driver = StratusLabNodeDriver(
        ex_config_file="stratuslab-user.cfg",
        ex_default_location="grnet",
        timeout=7.5,
        proxy_url="http://127.0.0.1:9",
    )
    monkeypatch.chdir(tmp_path)
    back = pickle.loads(pickle.dumps(driver))
    assert back.ex_default_location.id == "grnet" and back.timeout == 7.5
    assert back.connection.proxy_port == 9
