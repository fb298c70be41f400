"""What the README promises about building: the Rust minimum is the real one of the locked
dependencies, and the release profile ships no debug info."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CARGO_TOML = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
RUST_VERSION = re.search(r'^rust-version = "([0-9.]+)"$', CARGO_TOML, re.M)[1]  # type: ignore[index]
# rustup finds its toolchains under the real HOME, which the tests' fixture replaces.
REAL_HOME = os.environ.get("HOME", "")


def section(name: str) -> str:
    """The lines of one ``[name]`` table of Cargo.toml."""
    return CARGO_TOML.split(f"\n[{name}]\n", 1)[1].split("\n[", 1)[0]


def version(text: str) -> tuple[int, int, int]:
    major, minor, patch = ([int(part) for part in text.split(".")] + [0, 0])[:3]
    return major, minor, patch


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo not found (install Rust)")
def test_rust_version_is_the_minimum_of_the_locked_dependencies() -> None:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--offline", "--all-features"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "HOME": REAL_HOME},
    )
    meta = json.loads(out.stdout)
    resolved = {node["id"] for node in meta["resolve"]["nodes"]}
    needed = {
        p["name"]: version(p["rust_version"])
        for p in meta["packages"]
        if p["id"] in resolved and p.get("rust_version") and p["name"] != "stratuslab-libcloud"
    }
    ours = version(RUST_VERSION)
    assert ours == max(needed.values()), sorted(needed.items(), key=lambda kv: kv[1])[-3:]


def test_the_readme_states_the_rust_minimum() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"Rust ≥ {RUST_VERSION} (the `rust-version` of `Cargo.toml`" in readme
    assert "pip install -v ." in readme


def test_shipped_builds_have_no_debug_info_and_bench_has_a_profile() -> None:
    release = section("profile.release")
    assert "\ndebug = false\n" in release
    assert '\nstrip = "debuginfo"\n' in release
    assert section("profile.profiling").strip().splitlines()[-3:] == [
        'inherits = "release"',
        "debug = 1",
        'strip = "none"',
    ]
    assert "--profile profiling" in (ROOT / "bench" / "run.py").read_text(encoding="utf-8")
    assert re.search(r"--zig --compatibility manylinux2014", (ROOT / "Makefile").read_text())


@pytest.mark.skipif(shutil.which("make") is None, reason="make not found (apt-get install make)")
def test_make_test_runs_every_suite_and_fails_at_the_end() -> None:
    # A failing Rust suite (CARGO=false) does not stop the Python one; the target fails after it.
    out = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            "build",
            "test",
            "CARGO=false",
            f"PYTHON={sys.executable}",
            "PYTEST_ARGS=--version",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode != 0
    assert "pytest" in out.stdout + out.stderr  # `pytest --version` ran after the failure
    assert "make test: FAILED: test-rust\n" in out.stderr
