from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import transaction

from apps.accounts.models import User
from apps.audit.chain import chain_hash, genesis_hash
from apps.audit.models import AuditLog
from apps.audit.selectors import audit_trail_for
from apps.audit.services import audit_record
from apps.audit.tests.factories import AuditRecordFactory
from apps.core import correlation
from apps.core.scrubbing import SCRUBBED


@pytest.fixture
def request_context():
    """What CorrelationIdMiddleware sets for a request, here without one."""
    cid_token = correlation.set_correlation_id("req-7f3a")
    meta_token = correlation.set_request_meta(ip="2001:0db8:0000::0001", user_agent="paydesk-tests/1.0")
    yield
    correlation.reset_request_meta(meta_token)
    correlation.reset_correlation_id(cid_token)


def _record(**kwargs) -> AuditLog:
    with transaction.atomic(durable=True):
        return audit_record(**kwargs)


@pytest.mark.django_db
def test_each_record_chains_to_the_one_before_it():
    first = _record(actor=None, action="wallet.create", entity_type="wallet", entity_id="wal_1")
    second = _record(actor=None, action="wallet.deposit", entity_type="wallet", entity_id="wal_1")

    assert first.prev_hash == genesis_hash(first.chain)
    assert second.chain == first.chain  # one test transaction: one chain
    assert second.prev_hash == first.hash
    for row in AuditLog.objects.order_by("id"):
        assert chain_hash(row) == row.hash


@pytest.mark.django_db
def test_a_user_actor_is_recorded_by_id_and_email():
    user = User.objects.create_user("ada@example.com", "correct-horse-battery")

    row = _record(actor=user, action="auth.login", entity_type="user", entity_id=user.pk)

    assert (row.actor_type, row.actor_id, row.actor_repr) == ("user", user.pk, "ada@example.com")


@pytest.mark.django_db
def test_an_api_key_actor_is_recorded_by_id_and_name():
    api_key = SimpleNamespace(pk="key_01", name="shop backend", _meta=SimpleNamespace(model_name="apikey"))

    row = _record(actor=api_key, action="payment.create", entity_type="payment", entity_id="pay_1")

    assert (row.actor_type, row.actor_id, row.actor_repr) == ("api_key", "key_01", "shop backend")


@pytest.mark.django_db
def test_no_actor_is_the_system():
    row = _record(actor=None, action="subscription.renew", entity_type="subscription", entity_id="sub_1")

    assert (row.actor_type, row.actor_id, row.actor_repr) == ("system", "", "system")


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused_and_writes_nothing():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=None, action="wallet.create", entity_type="wallet", entity_id="wal_1")

    assert not AuditLog.objects.exists()


class _ChangeFailed(Exception):
    pass


def _change_that_fails_after_auditing() -> None:
    with transaction.atomic(durable=True):
        audit_record(actor=None, action="wallet.transfer", entity_type="wallet", entity_id="wal_1")
        raise _ChangeFailed


@pytest.mark.django_db
def test_a_record_rolls_back_with_the_change_it_describes():
    with pytest.raises(_ChangeFailed):
        _change_that_fails_after_auditing()

    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_passwords_and_card_numbers_never_reach_the_audit_trail():
    # given
    before = {"email": "ada@example.com", "password": "old-secret-pw"}
    after = {"email": "ada@example.com", "password": "new-secret-pw", "note": "card 4242 4242 4242 4242"}

    # when
    row = _record(
        actor=None, action="user.update", entity_type="user", entity_id="usr_1", before=before, after=after
    )

    # then
    stored = AuditLog.objects.get(pk=row.pk)
    assert stored.before == {"email": "ada@example.com", "password": SCRUBBED}
    assert stored.after == {"email": "ada@example.com", "password": SCRUBBED, "note": "card •••• 4242"}
    assert chain_hash(stored) == stored.hash


@pytest.mark.django_db
def test_the_request_correlation_id_ip_and_user_agent_are_recorded(request_context):
    row = _record(actor=None, action="auth.login", entity_type="user", entity_id="usr_1")

    stored = AuditLog.objects.get(pk=row.pk)
    assert stored.correlation_id == "req-7f3a"
    assert stored.ip == "2001:db8::1"
    assert stored.user_agent == "paydesk-tests/1.0"
    assert chain_hash(stored) == stored.hash


@pytest.mark.django_db
def test_outside_a_request_there_is_no_correlation_id_nor_client():
    row = _record(actor=None, action="outbox.sweep", entity_type="outbox", entity_id="all")

    assert (row.correlation_id, row.ip, row.user_agent) == ("", None, "")


class _Money:
    def __str__(self) -> str:
        return "15.00 EUR"


@pytest.mark.django_db
def test_values_that_are_not_plain_json_are_stored_as_they_hash():
    # given: values the JSON column would otherwise store differently from what was hashed
    after = {
        "at": datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC),
        "rate": Decimal("0.125"),
        "whole_float": 1e20,
        "fraction": 0.1,
        "nested": [{"n": 2.0}],
        7: "int key",
        "money": _Money(),
    }

    # when
    row = _record(actor=None, action="fx.update", entity_type="rate", entity_id="eur", after=after)

    # then: read back from the database, the row still hashes to what was written
    stored = AuditLog.objects.get(pk=row.pk)
    assert stored.after["at"] == "2026-01-02T03:04:05.000Z"
    assert stored.after["rate"] == "0.125"
    assert stored.after["7"] == "int key"
    assert stored.after["money"] == "15.00 EUR"
    assert chain_hash(stored) == stored.hash


@pytest.mark.django_db
def test_audit_trail_for_an_entity_lists_its_records_oldest_first():
    created = AuditRecordFactory(entity_type="payment", entity_id="pay_1", action="payment.create")
    AuditRecordFactory(entity_type="payment", entity_id="pay_2")
    captured = AuditRecordFactory(entity_type="payment", entity_id="pay_1", action="payment.capture")

    trail = audit_trail_for(entity_type="payment", entity_id="pay_1")

    assert [row.pk for row in trail] == [created.pk, captured.pk]
