"""The audit append in SQL (migration 0004) writes rows that hash exactly as `chain_hash` recomputes."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.audit.chain import CHAINS, chain_hash
from apps.audit.models import AuditLog
from apps.audit.services import CHAIN_LOCK_KEY, audit_record

# What an audit row made by a money function holds: strings of any characters, integers,
# booleans and nulls, nested.
_scalars = st.one_of(
    st.text(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.none(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _sql_canonical(value) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT audit_canonical_json(%s::jsonb)", [json.dumps(value)])
        return cursor.fetchone()[0]


@pytest.mark.django_db
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_values)
def test_the_sql_encoder_writes_what_pythons_canonical_json_writes(value):
    # PostgreSQL's text cannot hold NUL: such strings never reach the database.
    if "\\u0000" in json.dumps(value):
        return
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    assert _sql_canonical(value) == expected


@pytest.mark.django_db
def test_the_sql_encoder_refuses_a_fraction_rather_than_hash_it_differently():
    with pytest.raises(Exception, match="integers only"), transaction.atomic():
        _sql_canonical({"rate": 0.000015})


def _append(**fields) -> AuditLog:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT audit_append(%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s)",
            [
                fields["actor_type"],
                fields["actor_id"],
                fields["actor_repr"],
                "test.append",
                "thing",
                "thg_1",
                json.dumps(fields["before"]),
                json.dumps(fields["after"]),
                fields["correlation_id"],
                fields["ip"],
                fields["user_agent"],
                CHAINS,
                CHAIN_LOCK_KEY,
            ],
        )
        written_hash = cursor.fetchone()[0]
    return AuditLog.objects.get(hash=written_hash)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "ip", ["203.0.113.9", "2001:db8::1", "::ffff:192.0.2.7", None], ids=["v4", "v6", "v4-mapped", "none"]
)
def test_a_row_appended_in_sql_verifies_and_chains_with_rows_written_in_python(ip):
    with transaction.atomic():
        audit_record(actor=None, action="test.python", entity_type="thing", entity_id="thg_0")
    with transaction.atomic():
        row = _append(
            actor_type="user",
            actor_id="usr_1",
            actor_repr="zoë@exämple.test",
            before={"balance": 10, "note": 'quote " back\\slash\nnew line \U0001f4b8'},
            after={"balance": 0, "nested": [1, None, True, {"b": 1, "a": "é"}]},
            correlation_id="corr-1",
            ip=str(__import__("ipaddress").ip_address(ip)) if ip else None,
            user_agent="Mozilla/5.0 (X11; Ünïcode) \t tab",
        )
    with transaction.atomic():
        audit_record(actor=None, action="test.python", entity_type="thing", entity_id="thg_2")

    assert row.hash == chain_hash(row)
    call_command("verify_audit_chain")  # raises CommandError on any broken link
