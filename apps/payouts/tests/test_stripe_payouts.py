"""Payouts on the Stripe gateway, end to end through the API and the worker, against the fake Stripe
server (the official SDK over real HTTP): sent once with the payout's id as Stripe's idempotency key,
in transit until Stripe settles it, and `manage.py reconcile_payouts` for those no webhook settled."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from apps.core.models import OutboxEvent
from apps.ledger.selectors import ledger_system_account_balances
from apps.payouts.models import Payout
from apps.payouts.services import payouts_sweep
from apps.payouts.tests.conftest import create, money_state

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stripe_payouts(fake_stripe, settings):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    settings.PAYOUT_RETRY_BASE_SECONDS = 0
    return fake_stripe


def _in_transit(client, wallet, *, destination="btok_us_verified", amount=2_500, key="k1"):
    response = create(client, wallet, amount=amount, destination=destination, key=key)
    assert response.status_code == 201, response.json()
    return Payout.objects.get(pk=response.json()["id"])


def _age(payout, seconds=4 * 86_400):
    """The payout as if it had been in transit for `seconds` (no webhook came meanwhile)."""
    Payout.objects.filter(pk=payout.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def test_a_stripe_payout_is_sent_once_and_waits_in_transit_for_stripe(stripe_payouts, owner_client, wallet):
    payout = _in_transit(owner_client, wallet)

    [made] = stripe_payouts.payouts
    assert (payout.status, payout.gateway_reference) == ("in_transit", made["id"])
    assert made["metadata"] == {"paydesk_idempotency_key": payout.pk}
    assert (made["amount"], made["currency"], made["status"]) == (2_500, "usd", "pending")
    assert owner_client.get(f"/api/v1/payouts/{payout.pk}").json()["destination"] == {
        "type": "bank_account",
        "last4": "6789",
    }
    assert owner_client.get(f"/api/v1/wallets/{wallet.pk}").json()["balance"] == 7_500
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 2_500}
    # the sweep does not send a payout Stripe has taken
    assert payouts_sweep(now=timezone.now() + timedelta(days=1)) == 0
    assert len(stripe_payouts.payouts) == 1


def test_a_lost_answer_leaves_it_in_transit_and_the_retry_is_the_same_stripe_payout(
    stripe_payouts, owner_client, wallet
):
    bank_account = stripe_payouts.create_bank_account("us_verified")  # a ba_ id: no look-up first
    stripe_payouts.hang_next(1, seconds=2)

    payout = _in_transit(owner_client, wallet, destination=bank_account)

    assert (payout.status, payout.gateway_reference, payout.attempts) == ("in_transit", "", 1)
    [made] = stripe_payouts.payouts  # Stripe took it; we don't know yet
    payouts_sweep(now=timezone.now() + timedelta(hours=1))

    payout.refresh_from_db()
    assert (payout.status, payout.gateway_reference) == ("in_transit", made["id"])
    assert len(stripe_payouts.payouts) == 1
    # The retry looked it up by its key (a list of the payouts since the payout's id was made)
    # and sent nothing again: a key Stripe has forgotten (after 24 h) cannot make a second payout.
    sent = [r for r in stripe_payouts.requests if r.method == "POST" and r.path == "/v1/payouts"]
    assert [r.idempotency_key for r in sent] == [payout.pk]
    assert any(r.method == "GET" and r.path == "/v1/payouts" for r in stripe_payouts.requests)


def test_a_retry_of_a_payout_that_never_reached_stripe_sends_it_then(stripe_payouts, owner_client, wallet):
    bank_account = stripe_payouts.create_bank_account("us_verified")
    stripe_payouts.fail_next(1, status=500)

    payout = _in_transit(owner_client, wallet, destination=bank_account)

    assert (payout.status, payout.gateway_reference, payout.attempts) == ("in_transit", "", 1)
    assert stripe_payouts.payouts == []
    payouts_sweep(now=timezone.now() + timedelta(hours=1))

    payout.refresh_from_db()
    [made] = stripe_payouts.payouts
    assert (payout.status, payout.gateway_reference) == ("in_transit", made["id"])
    assert payout.pk in made["metadata"].values()


def test_reconcile_payouts_settles_a_stuck_payout_once_and_a_dry_run_writes_nothing(
    stripe_payouts, owner_client, wallet
):
    paid = _in_transit(owner_client, wallet, key="a")
    closed = _in_transit(
        owner_client,
        wallet,
        key="b",
        destination=stripe_payouts.create_bank_account("us_verified_accountClosed"),
    )
    recent = _in_transit(owner_client, wallet, key="c", amount=100)
    stripe_payouts.settle_payouts()  # Stripe settled them; no webhook came
    _age(paid)
    _age(closed)
    before, requests_before = money_state(), len(stripe_payouts.requests)

    out = io.StringIO()
    call_command("reconcile_payouts", "--dry-run", stdout=out, stderr=io.StringIO())

    assert out.getvalue().splitlines() == [
        f"would reconcile {paid.pk} (in_transit)",
        f"would reconcile {closed.pk} (in_transit)",
        "dry run: 2 payout(s) in transit for over 259200 s; nothing changed",
    ]
    assert money_state() == before
    assert len(stripe_payouts.requests) == requests_before  # not even asked

    out, err = io.StringIO(), io.StringIO()
    call_command("reconcile_payouts", stdout=out, stderr=err)

    assert out.getvalue().splitlines() == [
        f"{paid.pk}: in_transit -> paid",
        f"{closed.pk}: in_transit -> failed",
        "reconciled 2 of 2 payout(s)",
    ]
    assert "[##############################] 2/2" in err.getvalue()
    shown = {p["id"]: p for p in owner_client.get(f"/api/v1/wallets/{wallet.pk}/payouts").json()["data"]}
    assert (shown[paid.pk]["status"], shown[paid.pk]["failure_code"]) == ("paid", None)
    assert (shown[closed.pk]["status"], shown[closed.pk]["failure_code"]) == ("failed", "account_closed")
    assert shown[recent.pk]["status"] == "in_transit"  # not stuck long enough: not asked about
    # 10 000 - 2 500 paid - 100 still in transit; the failed 2 500 is back
    assert owner_client.get(f"/api/v1/wallets/{wallet.pk}").json()["balance"] == 7_400
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 100}

    # run again (everything older than 0 s): the settled ones are not touched again
    settled = money_state()
    out = io.StringIO()
    call_command("reconcile_payouts", "--older-than", "0", stdout=out, stderr=io.StringIO())
    assert out.getvalue().splitlines()[-1] == "reconciled 1 of 1 payout(s)"  # the recent one: paid now
    assert OutboxEvent.objects.filter(event_type="payout.paid", aggregate_id=paid.pk).count() == 1
    assert OutboxEvent.objects.filter(event_type="payout.failed", aggregate_id=closed.pk).count() == 1
    assert money_state()["balances"] == settled["balances"]
    call_command("verify_ledger", stdout=io.StringIO())


def test_reconcile_payouts_leaves_one_still_in_transit_and_reports_a_gateway_outage(
    stripe_payouts, owner_client, wallet
):
    payout = _in_transit(owner_client, wallet)
    _age(payout)

    out = io.StringIO()
    call_command("reconcile_payouts", stdout=out, stderr=io.StringIO())
    assert (
        out.getvalue().splitlines()[0]
        == f"{payout.pk}: left in_transit: {payout.pk} is in_transit; the gateway has it in transit"
    )

    stripe_payouts.fail_next(5, status=503)
    with pytest.raises(CommandError, match="1 payout\\(s\\) could not be reconciled"):
        call_command("reconcile_payouts", "--older-than", "0", stdout=io.StringIO(), stderr=io.StringIO())
    payout.refresh_from_db()
    assert payout.status == "in_transit"


def test_reconcile_payouts_help_names_its_options(capsys):
    with pytest.raises(SystemExit):
        call_command("reconcile_payouts", "--help")
    shown = capsys.readouterr().out
    assert "--dry-run" in shown
    assert "--older-than SECONDS" in shown
    assert "stuck in_transit" in shown


def test_the_hourly_reconcile_task_settles_what_no_webhook_did(
    stripe_payouts, owner_client, wallet, settings
):
    from apps.payouts.tasks import reconcile_payouts

    stuck = _in_transit(owner_client, wallet, key="a")
    recent = _in_transit(owner_client, wallet, key="b", amount=100)
    stripe_payouts.settle_payouts()  # Stripe paid both; no webhook came
    _age(stuck)

    assert settings.CELERY_BEAT_SCHEDULE["reconcile-payouts"]["task"] == reconcile_payouts.name
    assert reconcile_payouts.apply().get() == 1

    stuck.refresh_from_db()
    recent.refresh_from_db()
    assert (stuck.status, recent.status) == ("paid", "in_transit")
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 100}
