"""Read replica routing: reads go to `replica` until the unit of work writes, then to the primary.

With `REPLICA_DATABASE_URL` set, settings define `DATABASES["replica"]` (a streaming replica of
`default`). A unit of work (an HTTP request, a Celery task, a management command) carries a pin in
a context variable. Any write (`db_for_write`: saves, updates, deletes, and `select_for_update`,
which Django routes as a write) or any read inside a transaction on the primary pins it; from then
on every read of that unit goes to the primary, so it always sees its own writes. Money services
own a `transaction.atomic(durable=True)`, so everything they read is read on the primary.

Replication is asynchronous, so a client that wrote in one request and reads in the next could
see the past. After a request that wrote, the same credentials (Authorization header or session
cookie) read from the primary for `REPLICA_READ_YOUR_WRITES_SECONDS`.

Without a replica the router answers None everywhere: Django's default routing, unchanged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass

from celery import signals
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

PRIMARY = "default"
REPLICA = "replica"

# Always read on the primary: credentials and sessions must take effect at once (a revoked API
# key stops working at once, a user who just registered can log in), and the plumbing tables
# (outbox, idempotency keys, dead letters, beat schedules) are read to decide what to write.
PRIMARY_ONLY_APPS = frozenset(
    {"accounts", "auth", "token_blacklist", "sessions", "contenttypes", "core", "django_celery_beat"}
)


@dataclass
class _Pin:
    wrote: bool = False  # this unit of work wrote (or opened a transaction) on the primary
    sticky: bool = False  # these credentials wrote in a recent request
    forced: int = 0  # depth of `primary()` blocks

    @property
    def on_primary(self) -> bool:
        return self.wrote or self.sticky or self.forced > 0


_pin: ContextVar[_Pin | None] = ContextVar("paydesk_db_pin", default=None)


def _current() -> _Pin:
    pin = _pin.get()
    if pin is None:  # outside a request or task (a command, a shell): one unit of work per context
        pin = _Pin()
        _pin.set(pin)
    return pin


def replica_configured() -> bool:
    return REPLICA in connections.settings


def reads_on_primary() -> bool:
    """Whether reads of this unit of work go to the primary (it wrote, or is inside `primary()`)."""
    return _current().on_primary


@contextmanager
def unit_of_work() -> Iterator[_Pin]:
    """A fresh, unpinned unit of work for the block (what each request and each task gets)."""
    pin = _Pin()
    token = _pin.set(pin)
    try:
        yield pin
    finally:
        _pin.reset(token)


@contextmanager
def primary() -> Iterator[None]:
    """Reads in the block go to the primary, whatever the unit of work did before."""
    pin = _current()
    pin.forced += 1
    try:
        yield
    finally:
        pin.forced -= 1


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints) -> str | None:
        if not replica_configured():
            return None
        if model._meta.app_label in PRIMARY_ONLY_APPS:
            return PRIMARY
        pin = _current()
        if pin.on_primary:
            return PRIMARY
        if connections[PRIMARY].in_atomic_block:
            # Reads inside a transaction must see its own uncommitted rows; and whoever opened
            # a transaction is about to act on what it reads.
            pin.wrote = True
            return PRIMARY
        return REPLICA

    def db_for_write(self, model, **hints) -> str | None:
        if not replica_configured():
            return None
        _current().wrote = True
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        if {obj1._state.db, obj2._state.db} <= {PRIMARY, REPLICA}:
            return True  # the same rows: a replica is a copy of the primary
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool | None:
        return False if db == REPLICA else None


class PrimaryPinMiddleware:
    """Each request is its own unit of work; after one that wrote, its credentials stay on the
    primary for a few seconds (replication lag), so a client always reads what it just wrote."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with unit_of_work() as pin:
            key = _credentials_key(request) if replica_configured() else None
            if key:
                pin.sticky = _recently_wrote(key)
            response = self.get_response(request)
            if key and pin.wrote:
                _remember_write(key)
        return response


def _credentials_key(request: HttpRequest) -> str | None:
    credentials = request.META.get("HTTP_AUTHORIZATION") or request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not credentials:
        return None
    return "db-pin:" + hashlib.sha256(credentials.encode("utf-8", "replace")).hexdigest()[:32]


def _recently_wrote(key: str) -> bool:
    try:
        return cache.get(key) is not None
    except Exception:
        # Without the cache we cannot tell: the primary is always right, only busier.
        logger.warning("read-your-writes pin unavailable; reading from the primary", exc_info=True)
        return True


def _remember_write(key: str) -> None:
    seconds = settings.REPLICA_READ_YOUR_WRITES_SECONDS
    if seconds <= 0:
        return
    try:
        cache.set(key, 1, timeout=seconds)
    except Exception:
        logger.warning("read-your-writes pin not stored", exc_info=True)


# --- Celery: each task is its own unit of work -------------------------------------------------

_task_pins: dict[str, tuple[Token, _Pin | None]] = {}


@signals.task_prerun.connect
def _task_starts_unpinned(task_id=None, **kwargs) -> None:
    outer = _pin.get()
    _task_pins[task_id] = (_pin.set(_Pin()), outer)


@signals.task_postrun.connect
def _task_pin_released(task_id=None, **kwargs) -> None:
    entry = _task_pins.pop(task_id, None)
    if entry is None:
        return
    token, outer = entry
    task_pin = _pin.get()
    _pin.reset(token)
    # A task run inline (eager) that wrote has written for its caller too.
    if outer is not None and task_pin is not None and task_pin.wrote:
        outer.wrote = True
