"""The MongoDB side of the raw-log sink: one client per process, idempotent writes, lookups.

Plain pymongo against `MONGO_URL` (its path names the database; `paydesk_raw` when it has none).
Every call is bounded by MONGO_TIMEOUT_MS, so a MongoDB that is down fails a write within that
time and the caller (a Celery task) retries later. Each collection's indexes are created once per
process, before its first write: documents are found by payment id and by correlation id.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings
from pymongo import ASCENDING, MongoClient, ReplaceOne
from pymongo.collection import Collection

DEFAULT_DATABASE = "paydesk_raw"
GATEWAY_EXCHANGES = "gateway_exchanges"
NOTIFICATION_LOGS = "notification_logs"
INDEXES: dict[str, tuple[str, ...]] = {
    GATEWAY_EXCHANGES: ("payment_id", "correlation_id", "occurred_at"),
    NOTIFICATION_LOGS: ("notification_id", "payment_id", "correlation_id"),
}

_lock = threading.Lock()
# Keyed by process as well: a client must not cross a fork (Celery's prefork pool).
_clients: dict[tuple[int, str], MongoClient] = {}
_indexed: set[tuple[int, str, str]] = set()


def enabled() -> bool:
    return bool(settings.MONGO_URL)


def _client() -> MongoClient:
    key = (os.getpid(), settings.MONGO_URL)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                timeout = settings.MONGO_TIMEOUT_MS
                client = MongoClient(
                    settings.MONGO_URL,
                    serverSelectionTimeoutMS=timeout,
                    connectTimeoutMS=timeout,
                    socketTimeoutMS=timeout,
                    tz_aware=True,
                )
                _clients[key] = client
    return client


def collection(name: str) -> Collection:
    client = _client()
    target = client.get_default_database(default=DEFAULT_DATABASE)[name]
    marker = (os.getpid(), settings.MONGO_URL, name)
    if marker not in _indexed:
        for field_name in INDEXES.get(name, ()):
            target.create_index([(field_name, ASCENDING)], name=field_name)
        _indexed.add(marker)
    return target


def upsert_many(name: str, documents: list[dict[str, Any]]) -> None:
    """Writes each document under its `_id`, in one round trip (unordered: each stands alone);
    writing one twice (a retried task) leaves one copy."""
    if documents:
        collection(name).bulk_write(
            [ReplaceOne({"_id": document["_id"]}, document, upsert=True) for document in documents],
            ordered=False,
        )


def find(name: str, query: dict[str, Any], *, limit: int = 1000) -> list[dict[str, Any]]:
    return list(collection(name).find(query).sort("occurred_at", ASCENDING).limit(limit))


def close_clients() -> None:
    """Drops every client of this process (tests that stop their MongoDB server)."""
    with _lock:
        for key in [key for key in _clients if key[0] == os.getpid()]:
            _clients.pop(key).close()
        _indexed.clear()
