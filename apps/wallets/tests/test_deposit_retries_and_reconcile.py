"""Deposits take the card-payment path: one GatewayAttempt per call, retries by the worker, dead
letters, and reconciliation of a lost answer, settling once."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.core.models import DeadLetter
from apps.gateways import GatewayRetryableError
from apps.gateways.models import GatewayAttempt, SimulatedCharge
from apps.gateways.payment_methods import PaymentMethodNotFound
from apps.gateways.simulated import SimulatedGateway
from apps.ledger.models import JournalEntry
from apps.wallets import deposits, tasks
from apps.wallets.models import Transaction
from apps.wallets.services import reconcile_deposits, wallet_deposit
from apps.wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wallet():
    return WalletFactory(currency="USD")


def deposit(wallet, token, amount=2_500):
    return wallet_deposit(
        actor=None, user=wallet.user, wallet_id=wallet.pk, amount=amount, payment_method=token
    )


def attempts(txn):
    return list(
        GatewayAttempt.objects.filter(subject_id=txn.pk).order_by("id").values_list("operation", "outcome")
    )


def deposit_entries():
    return JournalEntry.objects.filter(kind="deposit").count()


@pytest.mark.parametrize(
    ("token", "status", "entries", "calls"),
    [
        ("tok_visa", "completed", 1, [("authorize", "captured")]),
        ("tok_chargeDeclined", "failed", 0, [("authorize", "failed")]),
        ("tok_riskLevelElevated", "failed", 0, [("authorize", "authorized"), ("void", "voided")]),
        ("tok_responseLost", "completed", 1, [("authorize", "lost"), ("retrieve", "captured")]),
        (
            "tok_transientError",
            "completed",
            1,
            [("authorize", "retryable_error"), ("authorize", "retryable_error"), ("authorize", "captured")],
        ),
    ],
)
def test_every_outcome_writes_one_ledger_entry_or_none_and_one_attempt_per_gateway_call(
    wallet, token, status, entries, calls
):
    txn = deposit(wallet, token)

    assert txn.status == status
    assert deposit_entries() == entries
    assert (txn.journal_entry_id is not None) == (entries == 1)
    assert attempts(txn) == calls
    wallet.refresh_from_db()
    assert wallet.balance == 2_500 * entries
    assert Transaction.objects.get(pk=txn.pk).payment_method_token == ""  # kept only while pending


def test_an_unknown_token_is_refused_before_any_deposit_or_gateway_call(wallet):
    with pytest.raises(PaymentMethodNotFound):
        deposit(wallet, "tok_doesNotExist")

    assert not Transaction.objects.exists()
    assert not GatewayAttempt.objects.exists()
    assert not SimulatedCharge.objects.exists()
    assert deposit_entries() == 0


def test_a_retryable_error_answers_pending_and_the_worker_completes_it(wallet, broker_down):
    txn = deposit(wallet, "tok_transientError")

    assert (txn.status, txn.attempts, txn.failure_code) == ("pending", 1, None)
    assert Transaction.objects.get(pk=txn.pk).payment_method_token == "tok_transientError"
    assert txn.next_attempt_at is not None
    assert deposit_entries() == 0

    assert tasks.retry_deposit(txn.pk) == "pending"  # the second transient error
    assert tasks.retry_deposit(txn.pk) == "completed"

    assert deposit_entries() == 1
    assert [outcome for _, outcome in attempts(txn)] == ["retryable_error", "retryable_error", "captured"]
    assert SimulatedCharge.objects.get(idempotency_key=txn.pk).amount_captured == 2_500
    assert tasks.retry_deposit(txn.pk) == "completed"  # a late retry changes nothing
    assert deposit_entries() == 1


def test_the_last_retryable_attempt_dead_letters_and_fails_the_deposit(wallet, settings):
    settings.DEPOSIT_RETRY_MAX_ATTEMPTS = 2

    txn = deposit(wallet, "tok_transientError")

    assert (txn.status, txn.failure_code) == ("failed", "gateway_unavailable")
    letter = DeadLetter.objects.get(reference=txn.pk)
    assert (letter.kind, letter.attempts, letter.payload["transaction"]) == ("deposit_charge", 2, txn.pk)
    assert deposit_entries() == 0
    assert [outcome for _, outcome in attempts(txn)] == ["retryable_error", "retryable_error"]


def _retrieve_fails_once(monkeypatch):
    real = SimulatedGateway.retrieve
    calls = []

    def retrieve(self, *, idempotency_key):
        calls.append(idempotency_key)
        if len(calls) == 1:
            raise GatewayRetryableError("search is down", code="gateway_timeout")
        return real(self, idempotency_key=idempotency_key)

    monkeypatch.setattr(SimulatedGateway, "retrieve", retrieve)
    return calls


def test_a_lost_answer_the_gateway_cannot_explain_yet_is_settled_once_by_reconciliation(wallet, monkeypatch):
    _retrieve_fails_once(monkeypatch)

    txn = deposit(wallet, "tok_responseLost")

    assert (txn.status, txn.reconcile_reason) == ("pending", "response_lost")
    assert deposit_entries() == 0

    first = reconcile_deposits()
    again = reconcile_deposits()

    assert first.changes == [(txn.pk, "pending", "completed")]
    assert (first.settled, again.changes) == (1, [])
    assert deposit_entries() == 1
    wallet.refresh_from_db()
    assert wallet.balance == 2_500
    assert [op for op, _ in attempts(txn)] == ["authorize", "retrieve", "retrieve"]


def test_an_answer_that_could_not_be_written_is_reconciled_not_guessed(wallet, monkeypatch):
    real = deposits.deposit_settle

    def settle_fails_once(**kwargs):
        monkeypatch.setattr(deposits, "deposit_settle", real)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(deposits, "deposit_settle", settle_fails_once)

    txn = deposit(wallet, "tok_visa")

    assert (txn.status, txn.reconcile_reason) == ("pending", "settle_failed")
    assert reconcile_deposits().changes == [(txn.pk, "pending", "completed")]
    assert deposit_entries() == 1
    assert SimulatedCharge.objects.count() == 1


def _stuck(txn, seconds):
    Transaction.objects.filter(pk=txn.pk).update(
        updated_at=timezone.now() - timedelta(seconds=seconds), next_attempt_at=None
    )


def test_a_deposit_left_pending_past_the_grace_period_is_reconciled(wallet, settings, broker_down):
    settings.DEPOSIT_STUCK_AFTER_SECONDS = 60
    charged = deposit(wallet, "tok_transientError")  # its retry was never queued: the broker is down
    never_charged = deposits.wallet_deposit_start(
        actor=None, user=wallet.user, wallet_id=wallet.pk, amount=100, payment_method="tok_visa"
    )
    recent = deposits.wallet_deposit_start(
        actor=None, user=wallet.user, wallet_id=wallet.pk, amount=100, payment_method="tok_visa"
    )
    _stuck(charged, 120)
    _stuck(never_charged, 120)

    report = reconcile_deposits()

    # The transient charge was never made (the gateway only ever answered with errors): nothing
    # was charged, the deposit fails; so does the one the gateway never saw. The recent one waits.
    assert sorted(report.changes) == sorted(
        [(charged.pk, "pending", "failed"), (never_charged.pk, "pending", "failed")]
    )
    assert Transaction.objects.get(pk=never_charged.pk).failure_code == "gateway_unavailable"
    assert Transaction.objects.get(pk=recent.pk).status == "pending"
    assert deposit_entries() == 0


def test_the_beat_task_runs_the_same_reconciliation(wallet, monkeypatch):
    _retrieve_fails_once(monkeypatch)
    txn = deposit(wallet, "tok_responseLost")

    assert tasks.reconcile_deposits() == 1
    assert Transaction.objects.get(pk=txn.pk).status == "completed"
    assert tasks.reconcile_deposits() == 0


def test_the_command_reconciles_with_progress_and_dry_run_changes_nothing(wallet, monkeypatch, capsys):
    _retrieve_fails_once(monkeypatch)
    txn = deposit(wallet, "tok_responseLost")

    call_command("reconcile_deposits", "--dry-run")
    dry = capsys.readouterr()
    assert f"would reconcile {txn.pk}" in dry.out
    assert "nothing changed" in dry.out
    assert Transaction.objects.get(pk=txn.pk).status == "pending"

    call_command("reconcile_deposits")
    done = capsys.readouterr()
    assert f"{txn.pk}: pending -> completed" in done.out
    assert "reconciled 1 of 1 deposit(s)" in done.out
    assert "1/1" in done.err
    assert deposit_entries() == 1


def test_the_command_has_help(capsys):
    with pytest.raises(SystemExit):
        call_command("reconcile_deposits", "--help")
    assert "--dry-run" in capsys.readouterr().out
