"""``python -m stratuslab_libcloud.localcloud``: prints its endpoints, serves until Ctrl-C
(SIGINT), then exits 0 and frees its port. Run as a real subprocess; its output is read as it
comes (no sleeping), with a deadline so a hung server fails the test instead of blocking it."""

from __future__ import annotations

import configparser
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import requests

import stratuslab_libcloud
from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER, parser

BANNER = re.compile(r"^StratusLab local cloud on (https?://127\.0\.0\.1:(\d+))$")
SESSION = f"{DEFAULT_USER}:{DEFAULT_PASSWORD}"


class Served:
    """A running CLI process and the lines it printed so far."""

    def __init__(self, *args: str, sigint_ignored: bool = False) -> None:
        command = [sys.executable, "-m", "stratuslab_libcloud.localcloud", *args]
        if sigint_ignored:
            # As a shell without job control starts a background command (`cmd &`): SIGINT
            # ignored, which exec keeps.
            command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.pending = b""

    def read_until(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Reads stdout lines until one matches ``pattern`` (raw reads: a buffered reader
        could hold lines the selector no longer sees)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                while b"\n" in self.pending:
                    line, self.pending = self.pending.split(b"\n", 1)
                    self.lines.append(line.decode())
                    m = re.search(pattern, self.lines[-1])
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise AssertionError(f"no line matching {pattern!r} in {self.lines}")
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"exited early after {self.lines}")
                self.pending += chunk

    def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C; returns (exit status, rest of stdout, stderr)."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, (self.pending + out).decode(), err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def served() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for s in started:
        s.kill()


def with_credentials(url: str) -> str:
    """``url`` with the local user's name and password (xmlrpc.client's HTTP basic auth)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{DEFAULT_USER}:{DEFAULT_PASSWORD}@{rest}"


def port_is_free(port: int) -> bool:
    """Nothing listens on the port any more (TIME_WAIT leftovers do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def test_serves_two_sites_writes_the_config_and_stops_on_ctrl_c(
    served: list[Served], tmp_path: Path
) -> None:
    cfg = tmp_path / "stratuslab-user.cfg"
    cli = Served("--port", "0", "--sites", "a,b", "--write-config", str(cfg), "--boot-step", "0")
    served.append(cli)
    banner = cli.read_until(BANNER.pattern)
    base, port = banner[1], int(banner[2])
    cli.read_until(r"^serving; press Ctrl-C to stop$")
    assert cli.lines[0] == f"configuration written to {cfg}"
    what = {
        "compute": "one-proxy XML-RPC, HTTP basic authentication",
        "rpc2": "the OpenNebula daemon's XML-RPC, session 'user:password'",
        "pdisk": "REST, HTTP basic authentication",
        "marketplace": "RDF/XML, or JSON with ?media=json",
    }
    urls = {
        site: {
            "compute": f"{base}/{site}/one-proxy/pswd/xmlrpc",
            "rpc2": f"{base}/{site}/RPC2",
            "pdisk": f"{base}/{site}/pdisk/pswd/disks/",
            "marketplace": f"{base}/marketplace/metadata",
        }
        for site in "ab"
    }
    assert cli.lines[2:] == [
        *(
            f"  {site:<12} {service:<12} {url}  ({what[service]})"
            for site in "ab"
            for service, url in urls[site].items()
        ),
        f"  user {DEFAULT_USER!r}, password {DEFAULT_PASSWORD!r}",
        "serving; press Ctrl-C to stop",
    ]

    # The written configuration: private, [default] selecting site a, one section per site with
    # the bases the driver takes and a readable location name.
    assert cfg.stat().st_mode & 0o777 == 0o600
    written = configparser.ConfigParser()
    written.read(cfg)
    assert written.sections() == ["default", "a", "b"]
    assert dict(written["default"]) == {
        "selected_section": "a",
        "username": DEFAULT_USER,
        "password": DEFAULT_PASSWORD,
    }
    assert written["b"]["endpoint"] == f"{base}/b/one-proxy/xmlrpc"
    assert written["b"]["pdisk_endpoint"] == f"{base}/b/pdisk"
    assert (written["b"]["name"], written["b"]["country"]) == ("b (local cloud)", "EU")

    # Every URL works as printed, with the printed credentials.
    for site in "ab":
        compute = with_credentials(urls[site]["compute"])
        for url in (compute, urls[site]["rpc2"]):
            rpc = xmlrpc.client.ServerProxy(url)
            assert rpc.one.system.version(SESSION) == [True, "3.8.5", 0]
    rpc = xmlrpc.client.ServerProxy(with_credentials(urls["b"]["compute"]))
    assert rpc.one.vm.allocate(SESSION, 'NAME = "cli"\nCPU = 1\nMEMORY = 64')[0] is True
    r = requests.get(urls["a"]["pdisk"], auth=(DEFAULT_USER, DEFAULT_PASSWORD))
    assert (r.status_code, r.json()) == (200, [])
    r = requests.get(urls["a"]["marketplace"])
    assert r.status_code == 200
    assert "rdf:RDF" in r.text
    assert requests.get(f"{urls['a']['marketplace']}?media=json").status_code == 200

    status, out, err = cli.interrupt()
    assert status == 0, err
    assert out == ""
    assert "stopped" in err
    assert "Traceback" not in err
    assert port_is_free(port)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{base}/marketplace/metadata", timeout=5)


def test_tls_seed_and_version_options(served: list[Served]) -> None:
    cli = Served("--sites", "lal", "--tls", "--seed-vms", "3", "--opennebula-version", "5.x")
    served.append(cli)
    base = cli.read_until(BANNER.pattern)[1]
    assert base.startswith("https://")
    ca = cli.read_until(r"^  CA certificate: (.+)$")[1]
    cli.read_until(r"^serving")
    assert Path(ca).is_file()
    r = requests.post(
        f"{base}/lal/RPC2",
        data=xmlrpc.client.dumps((SESSION, -2, -1, -1, -1), "one.vmpool.info"),
        verify=ca,
    )
    (reply,), _ = xmlrpc.client.loads(r.content)
    assert reply[0] is True
    assert reply[1].count("<VM>") == 3
    r = requests.post(
        f"{base}/lal/RPC2", data=xmlrpc.client.dumps((SESSION,), "one.system.version"), verify=ca
    )
    assert xmlrpc.client.loads(r.content)[0][0] == [True, "5.12.0", 0]
    status, _, err = cli.interrupt()
    assert status == 0, err
    # The CA lived in a temporary directory that is gone with the cloud.
    assert not Path(ca).exists()


def test_plain_opennebula_7_4_site(served: list[Served], tmp_path: Path) -> None:
    config = tmp_path / "plain.cfg"
    cli = Served(
        "--sites",
        "one",
        "--opennebula-version",
        "7.4",
        "--site-type",
        "opennebula",
        "--write-config",
        str(config),
    )
    served.append(cli)
    base = cli.read_until(BANNER.pattern)[1]
    cli.read_until(r"^serving")
    shown = [line.split()[1] for line in cli.lines if line.startswith("  one ")]
    assert shown == ["rpc2"], cli.lines
    r = requests.post(
        f"{base}/one/RPC2", data=xmlrpc.client.dumps((SESSION,), "one.system.version"), timeout=30
    )
    assert xmlrpc.client.loads(r.content)[0][0] == [True, "7.4.0", 0]
    parsed = configparser.RawConfigParser()
    parsed.read(config)
    assert parsed["one"]["site_type"] == "opennebula"
    assert parsed["one"]["endpoint"] == f"{base}/one/RPC2"
    driver = StratusLabNodeDriver(ex_config_file=str(config))
    assert {i.extra["kind"] for i in driver.list_images(location="one")} == {"image", "template"}
    status, _, err = cli.interrupt()
    assert status == 0, err


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratuslab_libcloud.localcloud", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_options_exit_2_with_a_plain_message(served: list[Served]) -> None:
    prefix = "python -m stratuslab_libcloud.localcloud: error: "
    for args, message in (
        (
            ["--sites", "metadata"],
            'invalid local cloud option: site name "metadata" must be unique, made of letters, '
            "digits, '-' or '_', and not",
        ),
        (["--sites", "a,a"], 'site name "a" must be unique'),
        (["--sites", "a b"], 'site name "a b" must be unique'),
        (["--sites", ","], "invalid local cloud option: at least one site is needed"),
        (["--opennebula-version", "6.0"], "invalid choice: '6.0'"),
        (["--site-type", "aws"], "invalid choice: 'aws'"),
        (["--port", "70000"], "'70000' is not a whole number from 0 to 65535"),
        (["--seed-vms", "-1"], "'-1' is not a whole number from 0 to"),
        (["--boot-step", "-1"], "boot_step"),
    ):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert f"{prefix}" in proc.stderr
        assert message in proc.stderr, proc.stderr
        # Not the context of a remote failure: there was no remote call.
        assert "site 'localcloud'" not in proc.stderr
        assert "Traceback" not in proc.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli("--port", str(port))
        assert proc.returncode == 2
        assert f"local cloud cannot listen on 127.0.0.1:{port}: Address already in use" in (
            proc.stderr
        )


def test_stops_on_ctrl_c_even_when_started_with_sigint_ignored(served: list[Served]) -> None:
    # `cmd &` in a script starts the command with SIGINT ignored; Ctrl-C (SIGINT) must
    # still stop the server.
    cli = Served("--sites", "lal", sigint_ignored=True)
    served.append(cli)
    cli.read_until(r"^serving; press Ctrl-C to stop$")
    status, _, err = cli.interrupt()
    assert status == 0, err
    assert "stopped" in err


def test_version_prints_the_package_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"stratuslab-libcloud {stratuslab_libcloud.__version__}\n"
    assert stratuslab_libcloud.__version__ == metadata.version("stratuslab-libcloud")


def test_every_option_has_help_and_its_default() -> None:
    options = [a for a in parser()._actions if a.dest not in ("help", "version")]
    assert {a.dest for a in options} == {
        "port",
        "sites",
        "opennebula_version",
        "site_type",
        "boot_step",
        "tls",
        "write_config",
        "seed_vms",
    }
    for action in options:
        assert action.help and "(default: " in action.help, action.option_strings
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # argparse wraps to the terminal's width
    for shown in (
        "--version print the package version and exit",
        "--port PORT TCP port (default: 0, an ephemeral port)",
        "(default: lal)",
        "--opennebula-version {3.2,3.8,4.x,5.x,7.4}",
        "--site-type {stratuslab,opennebula}",
        "(default: stratuslab)",
        "emulated (default: 3.8)",
        "(default: 0.5)",
        "(default: plain HTTP)",
        "(default: none written)",
        "VMs created at every site at start (default: 0)",
    ):
        assert shown in text, proc.stdout


def test_readable_location_names() -> None:
    with LocalCloud(sites=["lal", "grnet", "my-site"]) as cloud:
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
        assert [(loc.id, loc.name, loc.country) for loc in driver.list_locations()] == [
            ("lal", "LAL, Orsay (local cloud)", "FR"),
            ("grnet", "GRNET, Athens (local cloud)", "GR"),
            ("my-site", "my-site (local cloud)", "EU"),
        ]
