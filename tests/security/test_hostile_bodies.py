"""A bank of hostile bodies thrown at every POST/PUT/PATCH endpoint: never a 500, always the
error envelope when refused, never a stack trace or SQL in the answer. Every GET endpoint gets a
NUL character in its path and in its query parameters.

Each endpoint gets the whole-body attacks (not JSON, not an object, 100k-deep nesting, NaN,
over the size limit) and, for each field of a valid body, every hostile value in its place.
The caller is customer A (a real JWT), and paths name A's own objects, so the requests get past
authentication into parsing, validation and the services.
"""

from __future__ import annotations

import json
import uuid

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.security.test_access_matrix import TABLE, World

HOSTILE_VALUES = {
    "1 MB string": "x" * (1024 * 1024 - 200),
    "NaN": float("nan"),
    "Infinity": float("inf"),
    "-Infinity": float("-inf"),
    "huge integer": 10**400,
    "negative": -1,
    "float": 10.5,
    "exponent": 1e30,
    "RTL override": "\u202egnp.exe\u202c",
    "NUL": "abc\x00def",
    "lone surrogate escape": "__SURROGATE__",
    "zero-width and BOM": "\ufeff\u200b\u200d",
    "SQL-shaped": "'; DROP TABLE payments_payment; --",
    "SQL union": "1 UNION SELECT password FROM accounts_user",
    "null": None,
    "boolean": True,
    "list": [1, "a", None],
    "object": {"$gt": ""},
    "deep list": [[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]],
    "card number": "4242424242424242",
}

WHOLE_BODIES = {
    "not JSON": b"{not json",
    "JSON array": b"[1, 2, 3]",
    "JSON string": b'"hello"',
    "JSON null": b"null",
    "empty": b"",
    "100k-deep nesting": b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "bare NaN": b"NaN",
    "over the size limit": b'{"a": "' + b"x" * (3 * 1024 * 1024) + b'"}',
    "invalid UTF-8": b'{"a": "\xff\xfe"}',
    "duplicate keys": b'{"amount": 1, "amount": -5}',
    "NUL in a key": b'{"\\u0000": 1}',
    "NUL deep in metadata": b'{"metadata": {"a": [{"b": "c\\u0000d"}]}}',
}

WRITE_ROWS = [row for row in TABLE if row[0] in {"POST", "PUT", "PATCH"} and row[2] is not None]


def encode(body: dict) -> bytes:
    # json.dumps writes NaN/Infinity tokens and arbitrarily large integers, as a hostile client would
    text = json.dumps(body, ensure_ascii=False)
    return text.replace('"__SURROGATE__"', '"\\ud800"').encode("utf-8", "surrogatepass")


def bodies_for(valid: dict) -> list[tuple[str, bytes]]:
    cases = list(WHOLE_BODIES.items())
    for field in valid or {"unexpected": 1}:
        for label, value in HOSTILE_VALUES.items():
            cases.append((f"{field}={label}", encode({**valid, field: value})))
    cases.append(("extra hostile field", encode({**valid, "cvc": "123", "\u202efield": "x" * 10_000})))
    return cases


def assert_envelope(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.content[:300]!r}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, what
        assert {"type", "code", "message"} <= set(body["error"]), what
        text = response.content.decode()
        for leak in ("Traceback", "psycopg", 'FROM "', 'File "', "django.db"):
            assert leak not in text, f"{what}: {leak} in {text[:300]}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body_name"), [pytest.param(*r[:3], id=f"{r[0]} {r[1]}") for r in WRITE_ROWS]
)
def test_hostile_bodies_never_get_a_500(method, path, body_name):
    world = World()
    client = world.client("customer_a")
    url = path.format(**world.ids())
    for label, raw in bodies_for(world.body(body_name)):
        response = client.generic(
            method, url, data=raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
        )
        assert_envelope(response, f"{method} {path} with {label}")


READ_ROWS = [row for row in TABLE if row[0] == "GET"]
# Every filter and paging parameter API.md names for a list, and one it does not.
QUERY_PARAMETERS = ("limit", "cursor", "status", "customer_id", "created_gte", "created_lt", "template", "x")


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted({r[1] for r in READ_ROWS}))
def test_a_nul_character_in_a_path_or_query_is_refused_with_the_envelope(path):
    world = World()
    client = world.client("customer_a")
    url = path.format(**world.ids())
    attempts = [f"{url}?{name}=a%00b" for name in QUERY_PARAMETERS] + [f"{url}?a%00=1"]
    if "{" in path:
        attempts.append(path.format(**{key: f"{value}%00" for key, value in world.ids().items()}))
    for attempt in attempts:
        response = client.get(attempt)
        assert_envelope(response, f"GET {attempt}")
        assert response.status_code == 400, (attempt, response.status_code)
        assert response.json()["error"]["code"] == "nul_character_rejected"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b'{"amount": 500, "currency": "USD", "payment_method": "tok_visa", "description": "a\\u0000b"}',
        b'{"amount": 500, "currency": "USD", "payment_method": "tok_visa", "metadata": {"k\\u0000": "v"}}',
        b'{"amount": 500, "currency": "USD", "payment_method": "tok_visa", "x": [{"y": "\\u0000"}]}',
    ],
    ids=["in a field", "in a metadata key", "deep in an ignored field"],
)
def test_a_nul_character_anywhere_in_a_body_is_refused_and_nothing_is_written(body):
    from apps.payments.models import Payment

    world = World()
    before = Payment.objects.count()
    response = world.client("customer_a").generic(
        "POST", "/api/v1/payments", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="nul-1"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nul_character_rejected"
    assert Payment.objects.count() == before


@pytest.mark.django_db
def test_hostile_headers_and_content_types_are_refused_with_the_envelope():
    world = World()
    client = world.client("customer_a")
    body = encode(world.body("payment"))
    cases = [
        ("text/plain", {}),
        ("application/x-www-form-urlencoded", {}),
        ("multipart/form-data; boundary=x", {}),
        ("application/json; charset=utf-16", {}),
        ("application/json", {"HTTP_IDEMPOTENCY_KEY": "k" * 300}),
        ("application/json", {"HTTP_IDEMPOTENCY_KEY": "bad\u202ekey"}),
        ("application/json", {"HTTP_X_CORRELATION_ID": "x" * 5000}),
    ]
    for content_type, headers in cases:
        response = client.generic("POST", "/api/v1/payments", data=body, content_type=content_type, **headers)
        assert_envelope(response, f"{content_type} {list(headers)}")
        assert response.status_code in {201, 400, 415}, (content_type, headers, response.status_code)


def test_every_write_operation_of_the_schema_is_in_the_bank():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    writes = {
        (method.upper(), path.split("{")[0])
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"post", "put", "patch"}
    }
    banked = {
        (method, path.split("{")[0]) for method, path, _, _ in TABLE if method in {"POST", "PUT", "PATCH"}
    }
    assert writes <= banked
