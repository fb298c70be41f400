"""Shared fixtures: a two-site local cloud on an ephemeral port and a driver configured for it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import stratuslab_libcloud
from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).parent.parent.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's ~/.stratuslab or STRATUSLAB_* variables."""
    for key in list(os.environ):
        if key.startswith("STRATUSLAB_") or key.startswith("LIBCLOUD_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    # Configuration files written by tests hold passwords: private, as users are told to keep
    # them (a test that wants a readable file sets its mode itself).
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(sites=["lal", "grnet"], boot_step=0.02) as c:
        yield c


@pytest.fixture
def driver(cloud: LocalCloud) -> StratusLabNodeDriver:
    return StratusLabNodeDriver(ex_config_file=cloud.config_file)


@pytest.fixture
def ssh_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
        + " test@stratuslab-libcloud"
    )


def wait_for(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> object:
    """Polls ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


__all__ = ["FIXTURES", "SHARED", "stratuslab_libcloud", "wait_for"]
