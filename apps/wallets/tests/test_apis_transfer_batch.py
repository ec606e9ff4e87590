"""POST /transfers/batch (API.md "Batch transfers"): one request, one transaction, one function call."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditLog
from apps.ledger.models import JournalEntry
from apps.notifications.models import Notification
from apps.wallets.models import Transaction
from apps.wallets.services import wallet_freeze
from apps.wallets.tests.conftest import money_state
from apps.wallets.tests.factories import UserFactory, WalletFactory, fund

pytestmark = pytest.mark.django_db
URL = "/api/v1/transfers/batch"


@pytest.fixture
def sender():
    wallet = WalletFactory(user=UserFactory(full_name="Ada Sender"))
    fund(wallet, 1_000)
    return wallet


def _post(client_for, wallet, body, *, key: str | None = "auto"):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex if key == "auto" else key}
    return client_for(wallet.user).post(URL, body, format="json", **headers)


def _item(source, destination, amount, **extra):
    return {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": amount, **extra}


def _balance(wallet) -> int:
    wallet.refresh_from_db()
    return wallet.balance


def test_an_atomic_batch_completes_every_transfer_in_input_order(client_for, sender):
    first, second = WalletFactory(), WalletFactory()
    body = {
        "transfers": [
            _item(sender, first, 100, description="one"),
            _item(sender, second, 250),
            _item(sender, first, 50),
        ]
    }

    with CaptureQueriesContext(connection) as queries:
        response = _post(client_for, sender, body)

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["failed"] == 0
    assert [(t["destination_wallet"], t["amount"], t["status"]) for t in data["data"]] == [
        (first.pk, 100, "completed"),
        (second.pk, 250, "completed"),
        (first.pk, 50, "completed"),
    ]
    assert data["data"][0]["description"] == "one"
    assert (_balance(sender), _balance(first), _balance(second)) == (600, 150, 250)
    ids = [t["id"] for t in data["data"]]
    stored = Transaction.objects.in_bulk(ids)
    assert len({stored[i].journal_entry_id for i in ids}) == 3  # one entry per transfer
    assert AuditLog.objects.filter(action="wallet.transfer", entity_id__in=ids).count() == 3
    assert sum("wallet_transfer_batch_v2" in q["sql"] for q in queries.captured_queries) == 1
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    call_command("verify_audit_chain", stdout=out)
    assert "ledger OK" in out.getvalue()


def test_a_batch_notifies_each_party_once_not_once_per_item(
    client_for, sender, django_capture_on_commit_callbacks
):
    first, second = WalletFactory(), WalletFactory()
    body = {"transfers": [_item(sender, first, 100), _item(sender, first, 50), _item(sender, second, 25)]}

    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client_for, sender, body).status_code == 201

    sent = Notification.objects.filter(template__in=["transfer_sent", "transfer_received"])
    assert not sent.exists()
    by_user = {
        (n.user_id, n.template): n for n in Notification.objects.filter(template__startswith="transfer_batch")
    }
    assert set(by_user) == {
        (sender.user_id, "transfer_batch_sent"),
        (first.user_id, "transfer_batch_received"),
        (second.user_id, "transfer_batch_received"),
    }
    assert by_user[(first.user_id, "transfer_batch_received")].context["count"] == 2
    assert by_user[(first.user_id, "transfer_batch_received")].context["total"] == "1.50 USD"
    assert by_user[(sender.user_id, "transfer_batch_sent")].context["count"] == 3
    assert "Ada Sender" in by_user[(first.user_id, "transfer_batch_received")].subject


def test_an_atomic_batch_with_a_refused_item_answers_its_error_and_moves_nothing(client_for, sender):
    first, second = WalletFactory(), WalletFactory()
    before = money_state()
    body = {"transfers": [_item(sender, first, 100), _item(sender, second, 200), _item(sender, first, 900)]}

    response = _post(client_for, sender, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("insufficient_funds", "transfers[2].amount")
    assert money_state() == before


@pytest.mark.parametrize(
    ("make_item", "status", "code", "param"),
    [
        (lambda s, d, o, eur: _item(s, s, 10), 400, "same_wallet", "transfers[1].destination_wallet"),
        (lambda s, d, o, eur: _item(o, d, 10), 404, "resource_missing", "transfers[1].source_wallet"),
        (
            lambda s, d, o, eur: {**_item(s, d, 10), "destination_wallet": "wal_nope"},
            404,
            "resource_missing",
            "transfers[1].destination_wallet",
        ),
        (
            lambda s, d, o, eur: _item(s, eur, 10),
            400,
            "currency_mismatch",
            "transfers[1].destination_wallet",
        ),
    ],
    ids=["same-wallet", "someone-elses-source", "unknown-destination", "currency"],
)
def test_each_refusal_of_a_single_transfer_names_the_batch_item(
    client_for, sender, make_item, status, code, param
):
    destination, other, eur = WalletFactory(), WalletFactory(), WalletFactory(currency="EUR")
    fund(other, 500)
    before = money_state()
    body = {"transfers": [_item(sender, destination, 10), make_item(sender, destination, other, eur)]}

    response = _post(client_for, sender, body)

    assert response.status_code == status, response.json()
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param)
    assert money_state() == before


def test_a_frozen_destination_is_refused_in_place_when_not_atomic(client_for, sender, settings):
    open_wallet, frozen = WalletFactory(), WalletFactory()
    staff = UserFactory(is_staff=True, is_superuser=True)
    wallet_freeze(actor=staff, wallet_id=frozen.pk, note="fraud review")
    body = {
        "atomic": False,
        "transfers": [
            _item(sender, open_wallet, 100),
            _item(sender, frozen, 100),
            _item(sender, open_wallet, 800),
            _item(sender, open_wallet, 900),
        ],
    }

    response = _post(client_for, sender, body)

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["failed"] == 2
    first, refused, third, short = data["data"]
    assert (first["status"], third["status"]) == ("completed", "completed")
    assert (refused["error"]["code"], refused["error"]["param"]) == (
        "wallet_inactive",
        "transfers[1].destination_wallet",
    )
    # Items run in order on the balance earlier items left: 1000 - 100 - 800 leaves 100 < 900.
    assert (short["error"]["code"], short["error"]["param"]) == ("insufficient_funds", "transfers[3].amount")
    assert (_balance(sender), _balance(open_wallet), _balance(frozen)) == (100, 900, 0)
    assert Transaction.objects.filter(type="transfer").count() == 2


def test_a_batch_needs_an_idempotency_key_and_replays_with_it(client_for, sender):
    destination = WalletFactory()
    body = {"transfers": [_item(sender, destination, 100)]}
    before = money_state()

    missing = _post(client_for, sender, body, key=None)

    assert missing.status_code == 400
    assert (missing.json()["error"]["code"], missing.json()["error"]["param"]) == (
        "parameter_missing",
        "Idempotency-Key",
    )
    assert money_state() == before

    first = _post(client_for, sender, body, key="batch-1")
    again = _post(client_for, sender, body, key="batch-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _balance(sender) == 900
    assert JournalEntry.objects.filter(kind="transfer").count() == 1


@pytest.mark.parametrize(
    ("transfers", "param"),
    [
        ([], "transfers"),
        ([{"source_wallet": "wal_x", "destination_wallet": "wal_y", "amount": 1}] * 101, "transfers"),
        (
            [{"source_wallet": "wal_x", "destination_wallet": "wal_y", "amount": 1}] * 3
            + [{"source_wallet": "wal_x", "destination_wallet": "wal_y", "amount": 0}],
            "transfers[3].amount",
        ),
    ],
    ids=["empty", "over-100", "bad-amount"],
)
def test_an_invalid_batch_is_refused_before_anything_moves(client_for, sender, transfers, param):
    before = money_state()

    response = _post(client_for, sender, {"transfers": transfers})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert money_state() == before
