"""Registration with libcloud: on import, idempotent, case-insensitive, no shared state touched."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
from libcloud.compute.base import NodeDriver
from libcloud.compute.providers import DRIVERS, get_driver, set_driver

import stratuslab_libcloud
from stratuslab_libcloud import StratusLabNodeDriver


def test_import_registers_the_provider() -> None:
    assert get_driver("stratuslab") is StratusLabNodeDriver
    assert get_driver("StratusLab") is StratusLabNodeDriver
    assert DRIVERS["stratuslab"] == ("stratuslab_libcloud.driver", "StratusLabNodeDriver")


def test_register_is_idempotent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stratuslab_libcloud.register()
        stratuslab_libcloud.register()
    assert get_driver("stratuslab") is StratusLabNodeDriver


def test_import_after_a_manual_set_driver_raises_nothing() -> None:
    code = (
        "import warnings; warnings.simplefilter('error');"
        "from libcloud.compute.providers import set_driver, get_driver;"
        "set_driver('stratuslab', 'stratuslab_libcloud.driver', 'StratusLabNodeDriver');"
        "import stratuslab_libcloud; stratuslab_libcloud.register();"
        "assert get_driver('stratuslab') is stratuslab_libcloud.StratusLabNodeDriver;"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_a_foreign_registration_is_kept_and_reported() -> None:
    DRIVERS.pop("stratuslab")
    try:
        set_driver("stratuslab", "libcloud.compute.drivers.dummy", "DummyNodeDriver")
        with pytest.warns(RuntimeWarning, match="already registered"):
            stratuslab_libcloud.register()
        assert get_driver("stratuslab").__name__ == "DummyNodeDriver"
    finally:
        DRIVERS.pop("stratuslab", None)
        stratuslab_libcloud.register()
    assert get_driver("stratuslab") is StratusLabNodeDriver


def test_class_attributes_and_shared_features_untouched() -> None:
    assert StratusLabNodeDriver.type == "stratuslab"
    assert StratusLabNodeDriver.name == "StratusLab"
    assert StratusLabNodeDriver.website.startswith("http")
    assert StratusLabNodeDriver.features == {"create_node": ["ssh_key"]}
    assert StratusLabNodeDriver.features is not NodeDriver.features
    assert "ssh_key" not in NodeDriver.features.get("create_node", [])
