"""A user's script (tests/typing/user_script.py) type-checks under ``mypy --strict`` with the
package's mypy plugin, and runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "typing" / "user_script.py"


def test_the_user_script_type_checks_under_mypy_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy)")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nplugins = stratuslab_libcloud.mypy\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(SCRIPT),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_the_plugin_mypy_sees_libclouds_type_only(tmp_path: Path) -> None:
    """What the plugin is for: libcloud types get_driver() as type[NodeDriver]."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy)")
    script = tmp_path / "bare.py"
    script.write_text(
        "from libcloud.compute.providers import get_driver\n"
        "import stratuslab_libcloud  # noqa: F401\n"
        'reveal_type(get_driver("stratuslab"))\n'
        'reveal_type(get_driver("StratusLab"))\n'
        'reveal_type(get_driver("ec2"))\n'
    )
    config = tmp_path / "mypy.ini"
    revealed = {}
    for plugins in ("", "plugins = stratuslab_libcloud.mypy\n"):
        config.write_text("[mypy]\nstrict = True\n" + plugins)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--config-file",
                str(config),
                "--cache-dir",
                str(tmp_path / "cache"),
                str(script),
            ],
            capture_output=True,
            text=True,
        )
        revealed[bool(plugins)] = [
            line.split("Revealed type is ")[1]
            for line in result.stdout.splitlines()
            if "Revealed type is" in line
        ]
    assert revealed[False] == ['"type[libcloud.compute.base.NodeDriver]"'] * 3
    assert revealed[True] == [
        '"type[stratuslab_libcloud.driver.StratusLabNodeDriver]"',
        '"type[stratuslab_libcloud.driver.StratusLabNodeDriver]"',
        '"type[libcloud.compute.base.NodeDriver]"',
    ]


def test_the_user_script_runs() -> None:
    spec = importlib.util.spec_from_file_location("user_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    node_id, state = module.main()
    assert node_id.endswith("@lal") and state in ("pending", "running")
