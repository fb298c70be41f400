"""Proxies (libcloud's ``proxy_url=``, ``connection.set_http_proxy`` and the environment's
``http(s)_proxy``/``no_proxy``) through a real proxy on loopback, ``secure=False``, and Ctrl-C
during a blocking call."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from libcloud.common.types import LibcloudError
from libcloud.compute.base import NodeAuthSSHKey
from proxy import ProxyServer, running_proxy

from stratuslab_libcloud import LocalCloud, StratusLabNodeDriver
from stratuslab_libcloud.localcloud import DEFAULT_PASSWORD, DEFAULT_USER

IMAGE = "BzXGLnRmzChVZDNNVMvWfUiLPj7"
KEY = NodeAuthSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINetworkTestxxxxxxxxxxxxxxxxxxxx n@t")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROXY_VARIABLES, "all_proxy", "ALL_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def proxy() -> Iterator[ProxyServer]:
    with running_proxy() as p:
        yield p


@pytest.fixture
def tls_cloud() -> Iterator[LocalCloud]:
    with LocalCloud(sites=["lal"], tls=True) as c:
        yield c


def _compute_requests(proxy: ProxyServer) -> list[str]:
    return [line for line in proxy.lines() if "xmlrpc" in line or line.startswith("CONNECT")]


# ---------------------------------------------------------------------------------- proxies


def test_proxy_url_sends_every_request_through_the_proxy(
    cloud: LocalCloud, proxy: ProxyServer
) -> None:
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file, proxy_url=proxy.url)
    assert driver.list_nodes(ex_strict=True) == []
    base = cloud.base_url
    lines = proxy.lines()
    for site in ("lal", "grnet"):
        assert f"POST {base}/{site}/one-proxy/pswd/xmlrpc" in lines
        assert f"GET {base}/{site}/pdisk/pswd/disks/" in lines
    assert driver.connection.http_proxy_used and driver.connection.proxy_url == proxy.url
    assert (driver.connection.proxy_host, driver.connection.proxy_port) == (
        "127.0.0.1",
        proxy.server_address[1],
    )


def test_https_endpoints_are_tunnelled_with_connect(
    tls_cloud: LocalCloud, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    driver = StratusLabNodeDriver(
        ex_config_file=tls_cloud.config_file, ex_ca_cert=tls_cloud.ca_file
    )
    node = driver.create_node("tunnelled", driver.list_sizes()[0], IMAGE, auth=KEY)
    assert driver.ex_get_node(node).name == "tunnelled"
    authority = tls_cloud.base_url.split("://", 1)[1]
    assert proxy.lines() and set(proxy.lines()) == {f"CONNECT {authority}"}


@pytest.mark.parametrize("variable", ["http_proxy", "HTTP_PROXY"])
def test_http_proxy_alone_carries_https_too_as_in_libcloud(
    tls_cloud: LocalCloud, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    driver = StratusLabNodeDriver(
        ex_config_file=tls_cloud.config_file, ex_ca_cert=tls_cloud.ca_file
    )
    driver.list_nodes(ex_strict=True)
    assert _compute_requests(proxy)


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "localhost,127.0.0.0/8", " example.org , 127.0.0.1 ", "*"]
)
@pytest.mark.parametrize("case", [str.upper, str.lower])
def test_no_proxy_hosts_are_reached_directly(
    cloud: LocalCloud,
    proxy: ProxyServer,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str,
    case: Callable[[str], str],
) -> None:
    monkeypatch.setenv(case("http_proxy"), proxy.url)
    monkeypatch.setenv(case("no_proxy"), no_proxy)
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    assert driver.list_nodes(ex_strict=True) == []
    assert proxy.lines() == []
    # Without no_proxy, the same driver configuration goes through the proxy.
    monkeypatch.delenv(case("no_proxy"))
    StratusLabNodeDriver(ex_config_file=cloud.config_file).list_nodes(ex_strict=True)
    assert _compute_requests(proxy)


def test_the_upper_case_http_proxy_is_ignored_under_cgi(
    cloud: LocalCloud, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)  # "httpoxy": a request header under CGI
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    StratusLabNodeDriver(ex_config_file=cloud.config_file).list_nodes(ex_strict=True)
    assert proxy.lines() == []


def test_set_http_proxy_routes_the_next_requests(cloud: LocalCloud, proxy: ProxyServer) -> None:
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    driver.list_nodes()
    assert proxy.lines() == [] and not driver.connection.http_proxy_used
    driver.connection.set_http_proxy(proxy_url=proxy.url)
    driver.list_nodes(ex_strict=True)
    assert len(_compute_requests(proxy)) == 2
    assert driver.connection.http_proxy_used


@pytest.mark.parametrize(
    "bad", ["socks5://127.0.0.1:1080", "http://127.0.0.1", "127.0.0.1:3128", "http://:3128"]
)
def test_a_bad_proxy_url_is_refused_before_anything_is_sent(
    cloud: LocalCloud, proxy: ProxyServer, bad: str
) -> None:
    with pytest.raises(ValueError):
        StratusLabNodeDriver(ex_config_file=cloud.config_file, proxy_url=bad)
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    with pytest.raises(ValueError):
        driver.connection.set_http_proxy(bad)
    driver.list_nodes(ex_strict=True)  # still direct
    assert proxy.lines() == []


def test_proxy_credentials_are_sent_to_the_proxy_and_never_shown(
    cloud: LocalCloud, proxy: ProxyServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="stratuslab_libcloud")
    port = proxy.server_address[1]
    driver = StratusLabNodeDriver(
        ex_config_file=cloud.config_file, proxy_url=f"http://squid:pr0xy-secret@127.0.0.1:{port}"
    )
    driver.list_nodes(ex_strict=True)
    expected = "Basic " + base64.b64encode(b"squid:pr0xy-secret").decode()
    assert proxy.auth and set(proxy.auth) == {expected}
    assert driver.connection.proxy_username == "squid"
    assert driver.connection.proxy_url == f"http://squid@127.0.0.1:{port}"
    shown = repr(driver) + repr(vars(driver.connection)) + caplog.text
    assert "pr0xy-secret" not in shown


# ---------------------------------------------------------------------------------- secure


@pytest.mark.parametrize(
    ("host", "port", "compute", "pdisk"),
    [
        (
            "cloud.example.org",
            None,
            "http://cloud.example.org:2634/pswd/xmlrpc",
            "http://cloud.example.org:8445/pswd",
        ),
        (
            "cloud.example.org",
            8080,
            "http://cloud.example.org:8080/pswd/xmlrpc",
            "http://cloud.example.org:8445/pswd",
        ),
        (
            "http://cloud.example.org/one-proxy/xmlrpc",
            None,
            "http://cloud.example.org/one-proxy/pswd/xmlrpc",
            "http://cloud.example.org/pdisk/pswd",
        ),
        ("localhost", None, "http://localhost:2633/RPC2", "http://localhost:8445/pswd"),
    ],
)
def test_secure_false_means_plain_http(
    host: str, port: int | None, compute: str, pdisk: str
) -> None:
    driver = StratusLabNodeDriver(DEFAULT_USER, "pw", secure=False, host=host, port=port)
    extra = driver.list_locations()[0].extra
    assert (extra["compute_endpoint"], extra["pdisk_endpoint"]) == (compute, pdisk)
    assert driver.secure is False


def test_secure_true_keeps_https_and_false_contradicting_an_https_url_is_refused() -> None:
    driver = StratusLabNodeDriver(DEFAULT_USER, "pw", host="cloud.example.org", port=8443)
    assert driver.list_locations()[0].extra["compute_endpoint"].startswith("https://")
    with pytest.raises(ValueError, match="secure=False"):
        StratusLabNodeDriver(
            DEFAULT_USER, "pw", secure=False, host="https://cloud.example.org/one-proxy/xmlrpc"
        )


def test_secure_false_talks_plain_http_to_a_site(cloud: LocalCloud, proxy: ProxyServer) -> None:
    """Seen on the wire: the proxy gets the absolute http:// URL (an https one would be a
    CONNECT)."""
    driver = StratusLabNodeDriver(
        DEFAULT_USER,
        DEFAULT_PASSWORD,
        secure=False,
        host="127.0.0.1",
        port=cloud.port,
        ex_pdisk_endpoint=cloud.endpoints("lal")["pdisk"],
        ex_marketplace_endpoint=cloud.endpoints("lal")["marketplace"],
        proxy_url=proxy.url,
    )
    # The local cloud serves no first-generation path: its 404 is fine here.
    with contextlib.suppress(LibcloudError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        driver.list_nodes()
    assert f"POST http://127.0.0.1:{cloud.port}/pswd/xmlrpc" in proxy.lines()


# ---------------------------------------------------------------------------------- Ctrl-C


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _interrupt_after(seconds: float, sent: list[float]) -> threading.Timer:
    main = threading.main_thread().ident
    assert main is not None

    def fire() -> None:
        sent.append(time.monotonic())
        signal.pthread_kill(main, signal.SIGINT)

    timer = threading.Timer(seconds, fire)
    timer.start()
    return timer


CALLS: dict[str, Callable[[StratusLabNodeDriver], Any]] = {
    "list_nodes": lambda d: d.list_nodes(),
    "list_volumes": lambda d: d.list_volumes(),
    "list_images": lambda d: d.list_images(),
    "ex_get_node": lambda d: d.ex_get_node("0@lal"),
    "create_node": lambda d: d.create_node("slow", d.list_sizes()[0], IMAGE, auth=KEY),
    "wait_until_running": lambda d: d.wait_until_running(
        [d.create_node("w", d.list_sizes()[0], IMAGE, auth=KEY)], wait_period=0.1
    ),
}


@pytest.mark.skipif(sys.platform != "linux", reason="counts threads in /proc (Linux)")
@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)
@pytest.mark.parametrize("call", list(CALLS))
def test_ctrl_c_interrupts_a_blocking_call_at_once(cloud: LocalCloud, call: str) -> None:
    driver = StratusLabNodeDriver(ex_config_file=cloud.config_file)
    driver.list_nodes()
    driver.list_images()
    if call == "wait_until_running":
        cloud.inject_fault("slow", service="compute", op="one.vmpool.info", seconds=6.0)
    else:
        cloud.inject_fault("slow", service="any", seconds=6.0)
    before = _threads()
    sent: list[float] = []
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    timer = _interrupt_after(0.5, sent)
    try:
        with pytest.raises(KeyboardInterrupt):
            CALLS[call](driver)
        stopped = time.monotonic()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    delay = stopped - sent[0]
    assert delay < 0.3, f"KeyboardInterrupt came {delay:.3f} s after SIGINT"
    assert stopped - started < 2.0
    # The driver works at once afterwards, and no thread was left behind.
    cloud.clear_faults()
    t0 = time.monotonic()
    assert driver.list_nodes(ex_strict=True) is not None
    assert time.monotonic() - t0 < 2.0
    deadline = time.monotonic() + 15
    while _threads() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _threads() <= before
