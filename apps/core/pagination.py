"""Cursor pagination for every list in API.md: newest first, `?limit=` 1–100, opaque `?cursor=`.

The cursor encodes the last item's (created_at, id) and the next page is "strictly older than
that" in the order (-created_at, -id), so rows inserted while a client pages never shift, repeat
or hide the items still ahead of it (offsets would). Ids break ties between equal timestamps.

    params = page_params(request.query_params)
    page = paginate(payment_list(principal=user), params)
    return Response(page_body(page, OutputSerializer))
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db.models import Model, Q, QuerySet
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

from apps.core.errors import InvalidRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAX_CURSOR_LENGTH = 512

T = TypeVar("T", bound=Model)


@dataclass(frozen=True)
class PageParams:
    limit: int = DEFAULT_LIMIT
    after: tuple[datetime, str] | None = None  # the (created_at, id) the previous page ended on

    @property
    def cache_key(self) -> str:
        return f"{self.limit}:{encode_cursor(*self.after) if self.after else ''}"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, pk: str) -> str:
    raw = json.dumps([created_at.isoformat(), pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    invalid = InvalidRequest("cursor is invalid: pass the next_cursor of a previous page", param="cursor")
    if not cursor or len(cursor) > _MAX_CURSOR_LENGTH:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, pk = json.loads(raw)
        created_at = datetime.fromisoformat(created)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise invalid
    if created_at.tzinfo is None or not isinstance(pk, str) or not pk:
        raise invalid
    return created_at, pk


def page_params(query_params: Mapping[str, Any]) -> PageParams:
    """Parses `limit` and `cursor`; anything malformed is a 400 naming the parameter."""
    limit_text = query_params.get("limit")
    limit = DEFAULT_LIMIT
    if limit_text is not None:
        if not (isinstance(limit_text, str) and limit_text.isascii() and limit_text.isdigit()):
            raise InvalidRequest(f"limit must be an integer between 1 and {MAX_LIMIT}", param="limit")
        limit = int(limit_text)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be an integer between 1 and {MAX_LIMIT}", param="limit")
    cursor = query_params.get("cursor")
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor is not None else None)


def paginate(queryset: QuerySet[T], params: PageParams, *, time_field: str = "created_at") -> Page[T]:
    """One page of `queryset` in (-time_field, -pk) order, fetching one extra row to know if more follow."""
    queryset = queryset.order_by(f"-{time_field}", "-pk")
    if params.after is not None:
        created_at, pk = params.after
        queryset = queryset.filter(
            Q(**{f"{time_field}__lt": created_at}) | Q(**{time_field: created_at, "pk__lt": pk})
        )
    rows = list(queryset[: params.limit + 1])
    items = rows[: params.limit]
    next_cursor = None
    if len(rows) > params.limit:
        last = items[-1]
        next_cursor = encode_cursor(getattr(last, time_field), last.pk)
    return Page(items=items, next_cursor=next_cursor)


def page_body(page: Page, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
    return {"data": serializer_class(page.items, many=True).data, "next_cursor": page.next_cursor}


PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        description=f"1–{MAX_LIMIT}, default {DEFAULT_LIMIT}.",
        required=False,
    ),
    OpenApiParameter(
        "cursor",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "maxLength": _MAX_CURSOR_LENGTH},
        description="The `next_cursor` of the previous page, as it was (base64url).",
        required=False,
    ),
]


def page_schema(name: str, serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """The OpenAPI shape of `{"data": [...], "next_cursor": ...}` for drf-spectacular."""
    return inline_serializer(
        name,
        {
            "data": serializer_class(many=True),
            "next_cursor": serializers.CharField(allow_null=True),
        },
    )
