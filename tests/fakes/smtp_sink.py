"""A local SMTP server (aiosmtpd) that keeps every message it accepts, for Django's SMTP backend.

    with SmtpSink() as sink:
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        ...
        sink.wait_for(2)          # blocks until two messages arrived (or fails)

`refuse` holds recipients answered with a permanent 550, as a real server refuses a mailbox;
`answer_busy(times, after)` answers a 451 (try again later) to `times` messages once `after` more
have been accepted, as a relay in trouble does. `connections` counts the SMTP sessions clients
opened (what a batch of emails should need one of).
It runs in a thread of the test process, so a Celery worker in another process reaches it over TCP.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.fakes.local_server import free_port


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.sink.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.sink._lock:
            if self.sink._accept_before_busy > 0:
                self.sink._accept_before_busy -= 1
            elif self.sink._busy > 0:
                self.sink._busy -= 1
                return "451 4.3.0 Try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.sink._lock:
            self.sink.messages.append(message)
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class _CountingController(Controller):
    def __init__(self, sink: SmtpSink, **kwargs) -> None:
        super().__init__(_Handler(sink), **kwargs)
        self.sink = sink

    def factory(self):  # once per client connection
        with self.sink._lock:
            self.sink._connections += 1
        return super().factory()


class SmtpSink:
    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: set[str] = set()
        self._lock = threading.Lock()
        self._connections = 0
        self._busy = self._accept_before_busy = 0
        self._controller = _CountingController(self, hostname=self.host, port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> SmtpSink:
        self._controller.start()
        with self._lock:
            self._connections = 0  # not the controller's own check that the server is up
        return self

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def answer_busy(self, *, times: int, after: int = 0) -> None:
        with self._lock:
            self._busy, self._accept_before_busy = times, after

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, count: int, *, timeout: float = 30.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received()) >= count:
                return self.received()
            time.sleep(0.05)
        raise AssertionError(f"expected {count} email(s), got {len(self.received())}")
