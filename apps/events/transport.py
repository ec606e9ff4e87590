"""One POST to a merchant's endpoint, bounded in every way a receiver could abuse.

- The address: urllib3 connections whose `_new_conn` resolves the host itself, checks every address
  (apps.events.addresses) and connects to the address it checked: the name is never resolved a
  second time by someone else, so a DNS answer that changes between the check and the connect
  (rebinding) cannot reach an internal address. TLS still verifies the certificate against the
  name (SNI and hostname check use the URL's host). Proxies from the environment are ignored.
- The time: one deadline for the whole exchange (connect, headers, body). A timer shuts the
  socket down when it passes, so a receiver that trickles a byte a second cannot hold the worker
  past OUTBOUND_WEBHOOK_TIMEOUT_SECONDS (per-read timeouts alone would let it).
- The answer: redirects are never followed (a 3xx is a failed attempt); at most
  OUTBOUND_WEBHOOK_MAX_RESPONSE_BYTES of the body are read, and a longer body fails the attempt
  without being read further.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from apps.events.addresses import AddressRefused, allowed_addresses

USER_AGENT = "Paydesk-Webhooks/1.0"
_CHUNK = 16_384


@dataclass(frozen=True)
class Outcome:
    """What one POST did: a status code when an answer came, an error otherwise (or both: a 3xx,
    an answer too long)."""

    status_code: int | None
    error: str
    latency_ms: int

    @property
    def succeeded(self) -> bool:
        return not self.error and self.status_code is not None and 200 <= self.status_code < 300


class _Deadline:
    """Shuts down every socket of the exchange when the deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return max(self.expires - time.monotonic(), 0.001)

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _current.deadline = None


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to interrupt


_current = threading.local()


def _deadline() -> _Deadline | None:
    return getattr(_current, "deadline", None)


class _PinnedConnectionMixin:
    """Connects to an address the SSRF rules accepted, resolved here and nowhere else."""

    _dns_host: str
    port: int
    timeout: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            addresses = allowed_addresses(self._dns_host, self.port)
        except AddressRefused as exc:
            raise NewConnectionError(self, f"refused: {exc}")  # type: ignore[arg-type]
        except OSError as exc:
            raise NewConnectionError(self, f"cannot resolve {self._dns_host}: {exc}")  # type: ignore[arg-type]
        deadline = _deadline()
        last: OSError | None = None
        for address in addresses:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            for option in self.socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(min(self.timeout, deadline.remaining()) if deadline else self.timeout)
            try:
                sock.connect((str(address), self.port))
            except OSError as exc:
                sock.close()
                last = exc
                continue
            if deadline:
                deadline.watch(sock)
            return sock
        raise NewConnectionError(self, f"cannot connect to {self._dns_host}: {last}")  # type: ignore[arg-type]


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _WatchedPoolMixin:
    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = _deadline()
        if deadline:
            deadline.watch(conn.sock)  # a kept-alive connection: its socket was opened before
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]


class _PinnedHTTPPool(_WatchedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(_WatchedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}


def _session() -> requests.Session:
    """One session per thread (kept-alive connections are reused for the same host)."""
    session = getattr(_current, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no HTTP(S)_PROXY: a proxy would connect where we did not check
        adapter = _PinnedAdapter(pool_connections=16, pool_maxsize=4, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _current.session = session
    return session


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Outcome:
    """POSTs `body` to `url` within the deadline; never raises for anything the receiver does."""
    timeout = float(settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS)
    limit = int(settings.OUTBOUND_WEBHOOK_MAX_RESPONSE_BYTES)
    started = time.monotonic()
    status: int | None = None
    error = ""
    with _Deadline(timeout) as deadline:
        try:
            response = _session().post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
                timeout=(min(timeout, deadline.remaining()), min(timeout, deadline.remaining())),
                allow_redirects=False,
                stream=True,
            )
            status = response.status_code
            error = _read_bounded(response, limit)
            if not error and 300 <= status < 400:
                error = f"answered {status}: redirects are not followed"
            elif not error and not 200 <= status < 300:
                error = f"answered {status}"
        except requests.Timeout:
            error = f"timed out after {timeout:g} s"
        except requests.RequestException as exc:
            error = _describe(exc)
        if deadline.expired:
            error = f"timed out after {timeout:g} s" + (f" (answered {status})" if status else "")
    return Outcome(status_code=status, error=error[:500], latency_ms=int((time.monotonic() - started) * 1000))


def _read_bounded(response: requests.Response, limit: int) -> str:
    """Reads at most `limit` bytes of the body; returns an error if there was more."""
    received = 0
    try:
        while True:
            chunk = response.raw.read(_CHUNK, decode_content=False)
            if not chunk:
                break
            received += len(chunk)
            if received > limit:
                response.close()  # the connection is dropped, not drained
                return f"answered {response.status_code} with a body over {limit} bytes"
    except Exception as exc:  # the body broke off: a reset, the deadline's shutdown
        response.close()
        return f"answered {response.status_code}, then the body broke off ({type(exc).__name__})"
    response.raw.release_conn()
    return ""


def _describe(exc: requests.RequestException) -> str:
    text = str(exc)
    if "refused: " in text:
        return "refused: " + text.split("refused: ", 1)[1].split("'))", 1)[0].rstrip(")\"'")
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, requests.ConnectionError):
        lowered = text.lower()
        if "cannot resolve" in lowered:
            return "the host could not be resolved"
        if "reset" in lowered:
            return "connection reset by the receiver"
        if "refused" in lowered:
            return "connection refused"
        if "remotedisconnected" in lowered or "aborted" in lowered:
            return "the receiver closed the connection without answering"
        return "connection failed"
    return f"request failed ({type(exc).__name__})"
