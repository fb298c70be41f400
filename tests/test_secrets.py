"""Secrets: the password and the private-key path never show in ``repr()``/``str()`` of the
driver, its objects or its exceptions, in DEBUG logs (Rust records included), in the
``LIBCLOUD_DEBUG`` file, or in the traceback of any fault of the matrix. A configuration file
others can read is warned about, as ssh does for keys. And the request log: one line per HTTP
request, with site, method, URL, status, duration and size.
"""

from __future__ import annotations

import io
import logging
import re
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CloudFactory
from libcloud.compute.base import NodeAuthSSHKey
from test_faults import FAULTS, OPERATIONS, PASSWORD, World, expectation, run_case, world_factory

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver, _stratuslab
from stratuslab_libcloud.errors import (
    StratusLabConfigError,
    StratusLabConnectionError,
    StratusLabSecurityWarning,
)

__all__ = ["world_factory"]  # the fixture, shared with the fault matrix

IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecretsxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx s@s"
)
# One request line (src/http.rs): "<label>: <METHOD> <url> -> <status> in <ms> ms, <n> bytes",
# the label starting with the site.
REQUEST_LINE = re.compile(
    r"^site '(?P<site>[\w-]+)' (?P<what>[^:]+): (?P<method>GET|POST|PUT|DELETE|HEAD) "
    r"(?P<url>https?://\S+) -> (?P<status>\d{3}) in (?P<ms>\d+\.\d) ms, (?P<bytes>\d+) bytes$"
)


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger="stratuslab_libcloud")
    _stratuslab.reset_log_cache()  # pyo3-log caches levels: make Rust see DEBUG now
    yield caplog


@pytest.fixture
def cloud(make_cloud: CloudFactory) -> LocalCloud:
    return make_cloud(sites=["lal", "grnet"], boot_step=0.0, users={"alice": PASSWORD})


def total_requests(cloud: LocalCloud) -> int:
    return sum(cloud.request_count(s, "any", "*") for s in cloud.sites) + cloud.request_count(
        "", "marketplace", "*"
    )


def everything_printable(driver: StratusLabNodeDriver, objects: list[Any]) -> str:
    parts = [repr(driver), str(driver), repr(driver.__dict__)]
    for o in objects:
        parts += [repr(o), str(o), repr(getattr(o, "extra", None))]
    return "\n".join(parts)


def test_a_full_create_destroy_logs_one_line_per_request_and_no_password(
    cloud: LocalCloud,
    debug_log: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    debug_file = tmp_path / "libcloud-debug.log"
    monkeypatch.setenv("LIBCLOUD_DEBUG", str(debug_file))
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    start = total_requests(cloud)

    node = driver.create_node("logged", driver.list_sizes()[0], IMAGE, auth=KEY)
    volume = driver.create_volume(2, "logged")
    driver.attach_volume(node, volume)
    nodes = driver.list_nodes()
    driver.detach_volume(volume)
    driver.destroy_volume(volume)
    driver.destroy_node(node)

    sent = total_requests(cloud) - start
    lines = [r.getMessage() for r in debug_log.records if r.name == "stratuslab_libcloud"]
    requests = [m for m in (REQUEST_LINE.match(line) for line in lines) if m]
    assert len(requests) == sent, "\n".join(lines)
    assert sent >= 12
    assert {m["site"] for m in requests} == {"lal", "grnet"}  # list_nodes asks both sites
    assert {m["method"] for m in requests} == {"GET", "POST", "DELETE"}
    assert all(m["status"] in ("200", "201") for m in requests), lines
    allocations = [m for m in requests if m["what"] == "one.vm.allocate"]
    assert len(allocations) == 1 and allocations[0]["url"].endswith("/lal/one-proxy/pswd/xmlrpc")
    assert int(allocations[0]["bytes"]) > 0 and float(allocations[0]["ms"]) >= 0.0

    logged = debug_file.read_text(encoding="utf-8")
    assert len([ln for ln in logged.splitlines() if " -> " in ln and " ms, " in ln]) == sent
    printable = everything_printable(driver, [node, volume, *nodes])
    for text in (logged, "\n".join(lines), printable, debug_log.text):
        assert PASSWORD not in text
        assert "Authorization" not in text and "Basic " not in text


CASES = [
    pytest.param(op, f, id=f"{op.name}-{f.name}")
    for f in FAULTS
    for op in OPERATIONS
    if op.name in ("create_node", "list_nodes", "create_volume") and not expectation(op, f).skip
]


@pytest.mark.parametrize(("op", "fault"), CASES)
def test_no_fault_of_the_matrix_shows_the_password(
    op: Any,
    fault: Any,
    *,
    world_factory: Callable[[Any], World],
    debug_log: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    debug_file = tmp_path / "debug.log"
    monkeypatch.setenv("LIBCLOUD_DEBUG", str(debug_file))
    w = world_factory(fault)
    outcome = run_case(w, op, fault)
    exc = outcome.error
    texts = [
        outcome.traceback,
        debug_log.text,
        debug_file.read_text(encoding="utf-8"),
        everything_printable(w.driver, [w.node, w.volume]),
    ]
    if exc is not None:
        texts += [
            str(exc),
            repr(exc),
            repr(exc.args),
            repr(vars(exc)),
            "".join(traceback.format_exception(exc)),
        ]
    for text in texts:
        assert PASSWORD not in text


@pytest.mark.parametrize("key", ["endpoint", "pdisk_endpoint", "marketplace_endpoint"])
def test_a_password_in_an_endpoint_url_is_refused_without_being_shown(
    cloud: LocalCloud, key: str, debug_log: pytest.LogCaptureFixture
) -> None:
    text = re.sub(
        rf"(?m)^({key} = http://)", rf"\g<1>alice:{PASSWORD}@", cloud.config_text, count=1
    )
    assert PASSWORD in text.split("[lal]")[1]
    with pytest.raises(StratusLabConfigError) as info:
        StratusLabNodeDriver(ex_config_file=io.StringIO(text))
    shown = "\n".join(
        [
            str(info.value),
            repr(info.value),
            debug_log.text,
            "".join(traceback.format_exception(info.value)),
        ]
    )
    assert "site 'lal'" in str(info.value)
    assert PASSWORD not in shown


def test_the_private_key_path_is_never_shown(
    tmp_path: Path, debug_log: pytest.LogCaptureFixture
) -> None:
    with LocalCloud(sites=["lal"], tls=True) as cloud:
        cert, key = cloud.issue_client_cert("alice")
        secret_key = tmp_path / "my-secret-key-name.pem"
        secret_key.write_bytes(Path(key).read_bytes())
        secret_key.chmod(0o600)
        text = re.sub(r"(?m)^(username|password) = .*\n", "", cloud.config_text)
        text += f"pem_certificate = {cert}\npem_key = {secret_key}\n"
        cfg = tmp_path / "cert.cfg"
        cfg.write_text(text)
        cfg.chmod(0o600)
        driver = StratusLabNodeDriver(ex_config_file=cfg, ex_ca_cert=cloud.ca_file, timeout=2.0)
        nodes = driver.list_nodes(ex_strict=True)
        cloud.inject_fault("reset", site="lal", service="compute", op="one.vmpool.info")
        with pytest.raises(StratusLabConnectionError) as failure:
            driver.list_nodes(ex_strict=True)
        # A key that is not a key: the TLS setup error must not name the file either.
        secret_key.write_text("not a key")
        with pytest.raises(StratusLabConfigError) as setup:
            StratusLabNodeDriver(ex_config_file=cfg, ex_ca_cert=cloud.ca_file)
        assert "no private key found in the client key file (pem_key)" in str(setup.value)
        shown = "\n".join(
            [
                repr(driver),
                repr(nodes),
                repr(driver.list_locations()),
                debug_log.text,
                "".join(traceback.format_exception(failure.value)),
                "".join(traceback.format_exception(setup.value)),
            ]
        )
        assert "my-secret-key-name" not in shown


@pytest.mark.parametrize(
    ("mode", "warned"),
    [(0o600, False), (0o400, False), (0o640, True), (0o604, True), (0o644, True), (0o660, True)],
)
def test_a_configuration_others_can_read_is_warned_about(
    cloud: LocalCloud,
    mode: int,
    warned: bool,
    caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
) -> None:
    path = Path(cloud.config_file or "")
    path.chmod(mode)
    StratusLabNodeDriver(ex_config_file=path)
    ours = [w for w in recwarn.list if issubclass(w.category, StratusLabSecurityWarning)]
    if not warned:
        assert ours == []
        return
    assert len(ours) == 1
    assert str(ours[0].message) == (
        f"{path} is accessible by its group or others (mode {mode:04o}); it holds the "
        "StratusLab credentials: run 'chmod 600' on it"
    )
    assert ours[0].filename == __file__  # points at the caller's line
    assert [r.levelname for r in caplog.records if "chmod 600" in r.getMessage()] == ["WARNING"]


def test_a_configuration_given_as_an_open_file_is_not_checked(
    cloud: LocalCloud, recwarn: pytest.WarningsRecorder
) -> None:
    path = Path(cloud.config_file or "")
    path.chmod(0o644)
    with open(path, encoding="utf-8") as handle:
        StratusLabNodeDriver(ex_config_file=handle)
    assert not [w for w in recwarn.list if issubclass(w.category, StratusLabSecurityWarning)]


def test_libcloud_debug_follows_the_variable(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = logging.getLogger("stratuslab_libcloud")
    level = logger.level
    first, second = tmp_path / "one.log", tmp_path / "two.log"
    monkeypatch.setenv("LIBCLOUD_DEBUG", str(first))
    StratusLabNodeDriver(ex_config_file=cloud.config_file).list_nodes()
    monkeypatch.setenv("LIBCLOUD_DEBUG", str(second))
    StratusLabNodeDriver(ex_config_file=cloud.config_file).list_nodes()
    monkeypatch.delenv("LIBCLOUD_DEBUG")
    StratusLabNodeDriver(ex_config_file=cloud.config_file).list_nodes()
    one, two = first.read_text(), second.read_text()
    # list_nodes: vmpool.info + pdisk listing at each of the two sites.
    assert one.count(" -> 200 in ") == 4 and two.count(" -> 200 in ") == 4
    assert not [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
    assert logger.level == level
