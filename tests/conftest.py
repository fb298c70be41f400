"""Shared fixtures: a local-cloud factory, a two-site local cloud on an ephemeral port and a
driver configured for it. Plain helpers (``FIXTURES``, ``wait_for``) are in helpers.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver

CloudFactory = Callable[..., LocalCloud]


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
def make_cloud() -> Iterator[CloudFactory]:
    """Starts local clouds (``LocalCloud``'s arguments; ephemeral ports) and stops every one of
    them when the test ends."""
    with ExitStack() as stack:

        def make(*args: object, **kwargs: object) -> LocalCloud:
            return stack.enter_context(LocalCloud(*args, **kwargs))  # type: ignore[arg-type]

        yield make


@pytest.fixture
def cloud(make_cloud: CloudFactory) -> LocalCloud:
    """Two StratusLab sites, ``lal`` and ``grnet``; VMs boot in 20 ms steps."""
    return make_cloud(sites=["lal", "grnet"], boot_step=0.02)


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
