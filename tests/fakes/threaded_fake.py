"""What the fakes of remote HTTP APIs share (FakeStripe, FakeAuthorizeNet): an HTTP server in a
thread of the test's own process, its start and stop, and the failures a test scripts.

Scripting (each applies to the next n requests the fake answers, in order):
- `fail_next(n, status=500)`: answer with that HTTP status and do nothing;
- `fail_after_charge_next(n)`: do the work, then answer HTTP 500 (the answer is lost);
- `hang_next(n, seconds)`: do the work, then wait before answering (client timeouts);
- `recover()`: ends an outage scripted with a long `fail_next` / `hang_next`.
A subclass sets `handler` (its request handler class) and calls `_next_script()` with its lock held
for each request it answers.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a hanging answer must not hold up stop()
    fake: Any


@dataclass(frozen=True)
class Script:
    """What was scripted for one request: an HTTP status to fail with (nothing done), or the work
    done and its answer lost (a 500), and seconds to wait before answering."""

    failure: int | None
    lose_answer: bool
    hang: float


class ThreadedFake:
    handler: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # set by stop(): wakes scripted hangs
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._failures: deque[int] = deque()
        self._answers_to_lose = 0
        self._hangs: deque[float] = deque()

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Self:
        self._server = QuietServer(("127.0.0.1", 0), self.handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """http://127.0.0.1:<port> of the running server."""
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- scripting ------------------------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def fail_after_charge_next(self, n: int = 1) -> None:
        with self._lock:
            self._answers_to_lose += n

    def hang_next(self, n: int = 1, seconds: float = 5.0) -> None:
        with self._lock:
            self._hangs.extend([seconds] * n)

    def recover(self) -> None:
        """Ends an outage scripted with a long `fail_next`/`hang_next`: answers normally from now on."""
        with self._lock:
            self._failures.clear()
            self._hangs.clear()

    def _next_script(self) -> Script:
        """Takes what was scripted for the request being answered (the caller holds the lock)."""
        failure = self._failures.popleft() if self._failures else None
        lose = failure is None and self._answers_to_lose > 0
        self._answers_to_lose -= lose
        return Script(failure, lose, self._hangs.popleft() if self._hangs else 0.0)

    def _wait(self, seconds: float) -> None:
        """A scripted hang, cut short when the fake stops."""
        if seconds:
            self._stopping.wait(seconds)
