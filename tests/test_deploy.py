"""``deploy_node`` end to end through libcloud's own paramiko path, against a real OpenSSH server.

The local cloud leases loopback addresses (``public_network=("127.0.0.2", 50)``), so the node's
public IP is 127.0.0.2; a real ``sshd`` listens there on a port chosen free at runtime, with a
fresh host key and a configuration in ``tmp_path``. The only key it accepts is the one the local
cloud received in the VM's CONTEXT: the test reads it from ``cloud.vm_template`` once the VM
exists and writes it to the ``AuthorizedKeysFile`` (libcloud retries refused logins until its
timeout, so the order of events does not matter). The script's output is checked.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from helpers import wait_for
from libcloud.compute.base import NodeAuthSSHKey
from libcloud.compute.deployment import ScriptDeployment

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
ADDRESS = "127.0.0.2"

pytestmark = pytest.mark.skipif(
    not os.access(SSHD, os.X_OK),
    reason="OpenSSH sshd not found (apt-get install -y openssh-server; .ci/run installs it)",
)


def ed25519_pair() -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode()


def rsa_pair() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode()


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


class Sshd:
    """A private sshd: one address and port, one authorized_keys file, logs in ``log``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port(ADDRESS)
        self.user = getpass.getuser()
        self.authorized_keys = workdir / "authorized_keys"
        self.log = workdir / "sshd.log"
        host_key = workdir / "ssh_host_ed25519_key"
        host_key.write_bytes(ed25519_pair()[0])
        host_key.chmod(0o600)
        self.config = workdir / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"ListenAddress {ADDRESS}",
                    f"Port {self.port}",
                    f"HostKey {host_key}",
                    f"PidFile {workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "StrictModes no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    f"AllowUsers {self.user}",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            # sshd's privilege-separation directory (systemd creates it for the service).
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [SSHD, "-f", str(self.config), "-D", "-e"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_listening(self) -> None:
        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"sshd exited: {self.log.read_text()}")
            return listening(ADDRESS, self.port)

        wait_for(up, timeout=20, what="sshd to listen")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    server = Sshd(tmp_path)
    try:
        server.wait_listening()
        yield server
    finally:
        server.stop()


def context_public_key(template: str) -> str:
    match = re.search(r'\npublic_key = "([^"]*)",\n', template)
    assert match is not None, template
    return match.group(1)


def install_key_when_the_vm_exists(
    cloud: LocalCloud, sshd: Sshd, stop: threading.Event
) -> Callable[[], None]:
    """The provider's side of contextualisation: once the VM exists, its CONTEXT public key
    becomes the server's only authorized key."""

    def watch() -> None:
        while not stop.is_set():
            ids = cloud.vm_ids("lal")
            if ids:
                template = cloud.vm_template("lal", ids[0])
                assert template is not None
                tmp = sshd.authorized_keys.with_suffix(".tmp")
                tmp.write_text(context_public_key(template) + "\n")
                tmp.replace(sshd.authorized_keys)
                return
            stop.wait(0.01)

    return watch


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_deploy_node_runs_a_script_over_ssh(sshd: Sshd, tmp_path: Path, kind: str) -> None:
    private, public = rsa_pair() if kind == "rsa" else ed25519_pair()
    public += f" deploy-{kind}@stratuslab-libcloud"
    key_file = tmp_path / f"id_{kind}"
    key_file.write_bytes(private)
    key_file.chmod(0o600)
    script = ScriptDeployment(
        "echo hello-$(hostname)", name=str(tmp_path / "hello.sh"), delete=True
    )
    with LocalCloud(sites=["lal"], boot_step=0.05, public_network=(ADDRESS, 50)) as cloud:
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
        size = next(s for s in driver.list_sizes() if s.id == "t1.micro")
        image = driver.list_images()[0]
        stop = threading.Event()
        watcher = threading.Thread(target=install_key_when_the_vm_exists(cloud, sshd, stop))
        watcher.start()
        try:
            node = driver.deploy_node(
                deploy=script,
                ssh_key=str(key_file),
                ssh_port=sshd.port,
                ssh_username=sshd.user,
                auth=NodeAuthSSHKey(public),
                name=f"deploy-{kind}",
                size=size,
                image=image,
                wait_period=0.1,
                timeout=60,
            )
        finally:
            stop.set()
            watcher.join()
        assert (script.exit_status, script.stderr) == (0, "")
        assert script.stdout == f"hello-{socket.gethostname()}\n"
        assert not (tmp_path / "hello.sh").exists()
        assert node.id == "0@lal"
        assert node.name == f"deploy-{kind}"
        assert node.public_ips == [ADDRESS]
        template = cloud.vm_template("lal", 0)
        assert template is not None
        assert context_public_key(template) == public
        assert sshd.authorized_keys.read_text() == public + "\n"
        assert cloud.vm_state("lal", 0) == (3, 3)
    log = sshd.log.read_text()
    # The login used the key from the VM's CONTEXT, on the node's address.
    assert f"found at {sshd.authorized_keys}:1" in log, log
    assert re.search(
        rf"Accepted publickey for {re.escape(sshd.user)} from 127\.0\.0\.1 port \d+ ssh2: "
        + ("RSA" if kind == "rsa" else "ED25519"),
        log,
    ), log
    assert re.search(rf"Connection from 127\.0\.0\.1 port \d+ on {ADDRESS} port {sshd.port}", log)
