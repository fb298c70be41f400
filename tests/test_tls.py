"""TLS against the local cloud on HTTPS (its own generated CA): verification on by default and
failing clearly without the CA, passing with libcloud's ``CA_CERTS_PATH`` or ``ex_ca_cert``,
off only when asked (with a warning logged); client-certificate authentication on the ``/cert/``
contexts, and a certificate the CA did not sign refused."""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from libcloud import security
from libcloud.compute.base import NodeAuthSSHKey

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver, _stratuslab
from stratuslab_libcloud.errors import (
    StratusLabAuthError,
    StratusLabConfigError,
    StratusLabConnectionError,
)

IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITLSxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx t@l"
)


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(sites=["lal", "grnet"], tls=True, boot_step=0.0) as c:
        yield c


@pytest.fixture(autouse=True)
def _libcloud_security(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from libcloud's defaults (verification on, its CA bundle)."""
    monkeypatch.setattr(security, "VERIFY_SSL_CERT", True)
    monkeypatch.setattr(security, "CA_CERTS_PATH", None)


def test_the_local_cloud_serves_https(cloud: LocalCloud) -> None:
    assert cloud.base_url.startswith("https://127.0.0.1:")
    assert all(url.startswith("https://") for url in cloud.endpoints("lal").values())


@pytest.mark.parametrize("call", ["list_nodes", "list_images", "list_volumes"])
def test_without_the_ca_verification_fails_with_a_clear_error(cloud: LocalCloud, call: str) -> None:
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, timeout=5.0)
    with pytest.raises(StratusLabConnectionError) as info:
        if call == "list_images":
            driver.list_images()
        else:
            getattr(driver, call)(ex_strict=True)
    message = str(info.value)
    assert re.search(r"site '(lal|grnet)'", message)
    assert "TLS problem: certificate verification failed" in message
    assert "UnknownIssuer" in message
    assert (
        "ex_ca_cert" in message and "CA_CERTS_PATH" in message and "ex_verify_ssl=False" in message
    )


def test_libclouds_ca_certs_path_is_honoured(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "CA_CERTS_PATH", cloud.ca_file)
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    assert driver.list_nodes(ex_strict=True) == []
    assert driver.list_images()


def test_ex_ca_cert_is_honoured_and_beats_ca_certs_path(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_bytes(_self_signed("Some Other CA")[0])
    monkeypatch.setattr(security, "CA_CERTS_PATH", str(other))
    with pytest.raises(StratusLabConnectionError, match="certificate verification failed"):
        StratusLabNodeDriver(ex_config_file=cloud.config_file).list_nodes(ex_strict=True)
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, ex_ca_cert=cloud.ca_file)
    node = driver.create_node("tls", driver.list_sizes()[0], IMAGE, auth=KEY)
    assert [n.id for n in driver.list_nodes(ex_strict=True)] == [node.id]
    assert driver.destroy_node(node)


@pytest.mark.parametrize("how", ["argument", "libcloud"])
def test_verification_can_be_turned_off_explicitly_with_a_warning(
    cloud: LocalCloud, how: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="stratuslab_libcloud")
    if how == "argument":
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, ex_verify_ssl=False)
    else:
        monkeypatch.setattr(security, "VERIFY_SSL_CERT", False)
        driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    assert driver.list_nodes(ex_strict=True) == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "TLS certificate verification is OFF for this StratusLab driver: anyone on the path can "
        "read the credentials"
    ]


def test_ex_verify_ssl_true_beats_libclouds_switch(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "VERIFY_SSL_CERT", False)
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, ex_verify_ssl=True)
    with pytest.raises(StratusLabConnectionError, match="certificate verification failed"):
        driver.list_nodes(ex_strict=True)


def cert_config(cloud: LocalCloud, tmp_path: Path, cert: str, key: str) -> Path:
    """The local cloud's configuration with no username/password, only a certificate."""
    text = re.sub(r"(?m)^(username|password) = .*\n", "", cloud.config_text)
    text = text.replace("[default]\n", f"[default]\npem_certificate = {cert}\npem_key = {key}\n", 1)
    path = tmp_path / "cert.cfg"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_client_certificate_authentication_on_the_cert_contexts(
    cloud: LocalCloud, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stratuslab_libcloud")
    _stratuslab.reset_log_cache()
    cert, key = cloud.issue_client_cert("bob")
    driver = StratusLabNodeDriver(
        ex_config_file=cert_config(cloud, tmp_path, cert, key), ex_ca_cert=cloud.ca_file
    )
    node = driver.create_node("by-cert", driver.list_sizes()[0], IMAGE, location="grnet", auth=KEY)
    # one-proxy's user for a certificate is its DN, URL-encoded.
    assert node.extra["owner"] == "CN%3Dbob%2CO%3DStratusLab+Local+Cloud"
    volume = driver.create_volume(1, "by-cert", location="grnet")
    assert volume.extra["owner"] == "CN=bob,O=StratusLab Local Cloud"
    assert [n.id for n in driver.list_nodes(ex_strict=True)] == [node.id]
    assert driver.destroy_volume(volume) and driver.destroy_node(node)
    urls = {
        m.group(1)
        for r in caplog.records
        if (m := re.search(r" (https://\S+) -> ", r.getMessage()))
    }
    compute = {u for u in urls if "one-proxy" in u}
    pdisk = {u for u in urls if "/pdisk/" in u}
    assert compute == {f"{cloud.base_url}/{s}/one-proxy/cert/xmlrpc" for s in ("lal", "grnet")}
    assert pdisk and all("/pdisk/cert/" in u for u in pdisk)


def _self_signed(cn: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def test_a_certificate_the_ca_did_not_sign_is_refused(cloud: LocalCloud, tmp_path: Path) -> None:
    cert_pem, key_pem = _self_signed("mallory")
    cert, key = tmp_path / "mallory.pem", tmp_path / "mallory-key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    key.chmod(0o600)
    driver = StratusLabNodeDriver(
        ex_config_file=cert_config(cloud, tmp_path, str(cert), str(key)),
        ex_ca_cert=cloud.ca_file,
        timeout=5.0,
    )
    before = cloud.request_count("lal", "any", "*")
    vms = cloud.vm_ids("lal")
    with pytest.raises(StratusLabAuthError) as info:
        driver.list_nodes(ex_location="lal", ex_strict=True)
    assert re.fullmatch(
        r"site 'lal', list_nodes \(one.vmpool.info\) at "
        r"https://127.0.0.1:\d+/lal/one-proxy/cert/xmlrpc: "
        r"TLS problem: the server refused the client certificate \(CertificateUnknown\)",
        str(info.value),
    ), str(info.value)
    # Refused during the handshake: the request was never read.
    assert cloud.request_count("lal", "any", "*") == before
    assert cloud.vm_ids("lal") == vms


def test_a_certificate_without_its_key_is_a_configuration_error(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    cert, _ = cloud.issue_client_cert("carol")
    wrong_key = tmp_path / "wrong-key.pem"
    wrong_key.write_bytes(_self_signed("x")[1])
    wrong_key.chmod(0o600)
    with pytest.raises(StratusLabConfigError, match="client certificate and key rejected"):
        StratusLabNodeDriver(
            ex_config_file=cert_config(cloud, tmp_path, cert, str(wrong_key)),
            ex_ca_cert=cloud.ca_file,
        )
