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
from pathlib import Path

import pytest
import requests

from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

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
    assert cli.lines[2:] == [
        f"  a            compute      {base}/a/one-proxy/xmlrpc",
        f"  a            rpc2         {base}/a/RPC2",
        f"  a            pdisk        {base}/a/pdisk",
        f"  a            marketplace  {base}/marketplace",
        f"  b            compute      {base}/b/one-proxy/xmlrpc",
        f"  b            rpc2         {base}/b/RPC2",
        f"  b            pdisk        {base}/b/pdisk",
        f"  b            marketplace  {base}/marketplace",
        f"  user {DEFAULT_USER!r}, password {DEFAULT_PASSWORD!r}",
        "serving; press Ctrl-C to stop",
    ]

    # The written configuration: private, [default] selecting site a, one section per site.
    assert cfg.stat().st_mode & 0o777 == 0o600
    parser = configparser.ConfigParser()
    parser.read(cfg)
    assert parser.sections() == ["default", "a", "b"]
    assert dict(parser["default"]) == {
        "selected_section": "a",
        "username": DEFAULT_USER,
        "password": DEFAULT_PASSWORD,
    }
    assert parser["b"]["endpoint"] == f"{base}/b/one-proxy/xmlrpc"
    assert parser["b"]["pdisk_endpoint"] == f"{base}/b/pdisk"

    # Every service answers.
    rpc = xmlrpc.client.ServerProxy(f"{base}/b/RPC2")
    assert rpc.one.system.version(SESSION) == [True, "3.8.5", 0]
    assert rpc.one.vm.allocate(SESSION, 'NAME = "cli"\nCPU = 1\nMEMORY = 64')[0] is True
    r = requests.get(f"{base}/a/pdisk/pswd/disks/", auth=(DEFAULT_USER, DEFAULT_PASSWORD))
    assert (r.status_code, r.json()) == (200, [])
    assert requests.get(f"{base}/marketplace/metadata?media=json").status_code == 200

    status, out, err = cli.interrupt()
    assert status == 0, err
    assert out == ""
    assert "stopped" in err
    assert "Traceback" not in err
    assert port_is_free(port)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{base}/marketplace/metadata", timeout=5)


def test_tls_seed_and_version_options(served: list[Served]) -> None:
    cli = Served("--sites", "lal", "--tls", "--seed-vms", "3", "--version", "5.x")
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


def test_bad_options_exit_2_with_a_message(served: list[Served]) -> None:
    for args, message in (
        (["--sites", "metadata"], 'site name "metadata" must be unique'),
        (["--version", "6.0"], "invalid choice: '6.0'"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "stratuslab_libcloud.localcloud", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr
        assert "Traceback" not in proc.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "stratuslab_libcloud.localcloud", "--port", str(port)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
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
