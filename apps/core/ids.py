"""Prefixed opaque ids (`pay_01JD…`): a type prefix and a ULID.

A ULID is 48 bits of milliseconds and 80 random bits in Crockford base32, so ids sort by creation
time (index locality, stable cursors) and still can't be guessed.
"""

from __future__ import annotations

import functools
import secrets
import time
from datetime import UTC, datetime

from django.db import models

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_LENGTH = 26


def new_ulid() -> str:
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(ULID_LENGTH):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    return f"{prefix}_{new_ulid()}"


def created_at_of(value: str) -> datetime | None:
    """When an id of ours was made (its ULID's milliseconds); None for a string that is not one."""
    _, _, ulid = value.rpartition("_")
    if len(ulid) != ULID_LENGTH or any(char not in _ALPHABET for char in ulid):
        return None
    number = 0
    for char in ulid:
        number = number * 32 + _ALPHABET.index(char)
    return datetime.fromtimestamp((number >> 80) / 1000, tz=UTC)


def has_prefix(value: object, prefix: str) -> bool:
    return (
        isinstance(value, str)
        and value.startswith(f"{prefix}_")
        and len(value) == len(prefix) + 1 + ULID_LENGTH
    )


class PrefixedIdField(models.CharField):
    """Primary key holding `<prefix>_<ulid>`, generated on creation."""

    def __init__(self, *args, prefix: str, **kwargs):
        self.prefix = prefix
        kwargs.setdefault("primary_key", True)
        kwargs["max_length"] = len(prefix) + 1 + ULID_LENGTH
        kwargs["default"] = functools.partial(new_id, prefix)
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        for derived in ("max_length", "default", "editable"):
            kwargs.pop(derived, None)
        return name, path, args, kwargs


def new_pk(model: type[models.Model]) -> str:
    """A fresh primary key for `model`, as its `PrefixedIdField` makes one: for rows written in SQL."""
    field = model._meta.pk
    if not isinstance(field, PrefixedIdField):
        raise TypeError(f"{model.__name__} has no prefixed id")
    return new_id(field.prefix)
