"""A merchant's webhook endpoint for the tests: a real HTTP server on 127.0.0.1 in a thread of the
test process, recording every request it gets and answering the way the test asks.

    with WebhookReceiver() as receiver:
        receiver.behave("fail", status=500)      # then "ok", "hang", "trickle", "reset", "redirect", "huge"
        ... receiver.url ... receiver.requests ... receiver.wait_for(2)
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # answers are not held back waiting for an ACK

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        receiver = self.server.receiver
        with receiver.lock:
            receiver.requests.append(Received(self.path, dict(self.headers.items()), body, time.monotonic()))
            mode, options = receiver.mode, dict(receiver.options)
            receiver.arrived.notify_all()
        getattr(self, f"_{mode}")(**options)

    def _answer(self, status: int, body: bytes = b"ok", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _ok(self, status: int = 200) -> None:
        self._answer(status)

    def _fail(self, status: int = 500) -> None:
        self._answer(status, b"nope")

    def _redirect(self, status: int = 302) -> None:
        self._answer(status, b"", {"Location": "http://127.0.0.1:1/elsewhere"})

    def _hang(self, seconds: float = 30) -> None:
        self.server.receiver.released.wait(seconds)

    def _trickle(self, seconds: float = 30) -> None:
        # A status line, then a header byte a second: every read gets something, none completes.
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.wfile.flush()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.server.receiver.released.is_set():
            try:
                self.wfile.write(b"X")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.5)

    def _slow(self, seconds: float = 1.0, status: int = 200) -> None:
        time.sleep(seconds)
        self._answer(status)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout: close() sends a RST instead of a FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _huge(self, size: int = 10 * 1024 * 1024) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b"x" * 65_536
        sent = 0
        try:
            while sent < size:
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            self.server.receiver.cut_short = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.released = threading.Event()
        self.mode, self.options = "ok", {}
        self.cut_short = False
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def behave(self, mode: str, **options: Any) -> None:
        with self.lock:
            self.mode, self.options = mode, options

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        with self.lock:
            if not self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise AssertionError(f"{len(self.requests)} request(s) arrived, not {count}")
            return list(self.requests)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
