"""A small HTTP proxy on 127.0.0.1 for the tests: absolute-URI requests are forwarded (one per
connection), ``CONNECT`` opens a tunnel. It records each request line and its
``Proxy-Authorization`` header."""

from __future__ import annotations

import select
import socket
import socketserver
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager


class ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.seen: list[str] = []
        self.auth: list[str | None] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def lines(self) -> list[str]:
        with self.lock:
            return list(self.seen)


class _Handler(socketserver.StreamRequestHandler):
    server: ProxyServer

    def handle(self) -> None:
        line = self.rfile.readline(65537).decode("latin-1").strip()
        if not line:
            return
        headers: list[tuple[str, str]] = []
        while True:
            raw = self.rfile.readline(65537).decode("latin-1")
            if raw in ("\r\n", "\n", ""):
                break
            name, _, value = raw.partition(":")
            headers.append((name.strip(), value.strip()))
        method, target, _version = line.split(" ", 2)
        auth = next((v for n, v in headers if n.lower() == "proxy-authorization"), None)
        with self.server.lock:
            self.server.seen.append(f"{method} {target}")
            self.server.auth.append(auth)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host, int(port)))
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            _relay(self.connection, upstream)
            return
        url = urllib.parse.urlsplit(target)
        length = int(next((v for n, v in headers if n.lower() == "content-length"), "0"))
        body = self.rfile.read(length) if length else b""
        kept = [
            (n, v)
            for n, v in headers
            if n.lower() not in ("connection", "proxy-authorization", "proxy-connection")
        ]
        path = url.path + (f"?{url.query}" if url.query else "")
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in kept)
        with socket.create_connection((url.hostname or "", url.port or 80)) as upstream:
            upstream.sendall(head.encode("latin-1") + b"Connection: close\r\n\r\n" + body)
            reply = b""
            while chunk := upstream.recv(65536):
                reply += chunk
        status_and_headers, _, rest = reply.partition(b"\r\n\r\n")
        lines = [
            h for h in status_and_headers.split(b"\r\n") if not h.lower().startswith(b"connection:")
        ]
        self.wfile.write(b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + rest)
        self.wfile.flush()


def _relay(a: socket.socket, b: socket.socket) -> None:
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], 30)
            if not ready:
                return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()


@contextmanager
def running_proxy() -> Iterator[ProxyServer]:
    server = ProxyServer()
    thread = threading.Thread(target=server.serve_forever, name="test-proxy", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
