"""A user's script, as the README writes it: it must pass ``mypy --strict`` with the package's
plugin (``make lint`` checks it; tests/test_typing.py checks it and runs it)."""

from __future__ import annotations

import copy
import pickle

from libcloud.compute.base import Node, NodeAuthSSHKey, NodeDriver
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState

import stratuslab_libcloud  # noqa: F401  (registers the "stratuslab" provider)
from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver


def main() -> list[str]:
    with LocalCloud(sites=["lal"]) as cloud:
        with open(cloud.config_file, encoding="utf-8") as handle:
            assert "[lal]" in handle.read()
        cls = get_driver("stratuslab")
        driver = cls(ex_config_file=cloud.config_file)
        same: StratusLabNodeDriver = get_driver("stratuslab")(ex_config_file=cloud.config_file)
        generic: NodeDriver = driver
        size = driver.list_sizes()[0]
        key = NodeAuthSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyxxxxxxxxxxxxxxxx u@h")
        node = driver.create_node("typed", size, "BzXGLnRmzChVZDNNVMvWfUiLPj7", auth=key)
        again: Node = driver.ex_get_node(node)
        by_id: Node = same.ex_get_node(node.id)
        assert again.id == by_id.id
        copied = copy.deepcopy(node)
        restored: Node = pickle.loads(pickle.dumps(node))
        state: NodeState = restored.driver.ex_get_node(restored.id).state
        generic.destroy_node(copied)
        return [str(node.id), state.value]


if __name__ == "__main__":
    print(main())
