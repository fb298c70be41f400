"""libcloud's own generic driver tests (``libcloud.test.compute.TestCaseMixin``) against the driver
on a two-site local cloud with one seeded (running) node per site.

Nothing is overridden or skipped: every mixin test applies. ``should_list_volumes`` is on (the
driver lists pdisk volumes); ``should_have_pricing`` stays off (StratusLab has no price list);
``create_node`` gets its SSH key from ``ex_public_key_file`` (the mixin passes no ``auth``).
"""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

from libcloud.compute.base import Node
from libcloud.compute.types import NodeState
from libcloud.test import compute as libcloud_compute_tests

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOn2oeaD0RrhPJ+ib3tcBI8p mixin@test"


# Imported as a module attribute so that pytest does not collect the bare mixin as a test class.
class StratusLabMixinTests(unittest.TestCase, libcloud_compute_tests.TestCaseMixin):  # type: ignore[misc]
    should_list_locations = True
    should_list_volumes = True
    should_have_pricing = False

    def setUp(self) -> None:
        self.cloud = LocalCloud(sites=["lal", "grnet"], boot_step=0.02).start()
        self.addCleanup(self.cloud.stop)
        self.cloud.seed("lal", vms=1, volumes=2)
        self.cloud.seed("grnet", vms=1)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        key = Path(tmp.name) / "id_ed25519.pub"
        key.write_text(PUBLIC_KEY + "\n")
        self.driver = StratusLabNodeDriver(
            ex_config_file=self.cloud.config_file, ex_public_key_file=str(key)
        )

    # The mixin only checks types; these pin what the seeded cloud must give.

    def test_seeded_listing(self) -> None:
        nodes = self.driver.list_nodes()
        self.assertEqual(sorted(n.id for n in nodes), ["0@grnet", "0@lal"])
        self.assertTrue(all(isinstance(n, Node) and n.state == NodeState.RUNNING for n in nodes))
        self.assertEqual(len(self.driver.list_volumes()), 2)
        self.assertEqual([loc.id for loc in self.driver.list_locations()], ["lal", "grnet"])

    def test_create_node_response_sends_the_configured_key(self) -> None:
        self.test_create_node_response()
        template = self.cloud.vm_template("lal", 1)
        self.assertIsNotNone(template)
        self.assertIn(f'public_key = "{PUBLIC_KEY}"', template or "")
        self.assertIn('NAME = "node-name"', template or "")

    def test_destroy_and_reboot_act_on_the_first_node(self) -> None:
        self.test_reboot_node_response()
        self.assertEqual(self.cloud.vm_state("lal", 0), (3, 3))
        self.test_destroy_node_response()
        self.assertEqual(self.cloud.vm_state("lal", 0), (6, 0))
