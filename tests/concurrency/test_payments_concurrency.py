"""Concurrency on PostgreSQL with real threads: one charge per key, one decision per review."""

import threading

import pytest
from django.db import connection

from apps.gateways.models import SimulatedCharge
from apps.payments.models import Payment, Review

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def run_at_once(count, work):
    barrier = threading.Barrier(count)
    results = [None] * count
    errors = []

    def worker(index):
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_twenty_identical_payments_with_one_key_make_one_charge(client_for, user):
    clients = [client_for(user) for _ in range(20)]
    body = {"amount": 4200, "currency": "USD", "payment_method": "tok_visa"}

    def pay(index):
        response = clients[index].post(
            "/api/v1/payments", body, format="json", HTTP_IDEMPOTENCY_KEY="order-77"
        )
        return response.status_code, response.json(), response.get("Idempotent-Replayed")

    results = run_at_once(20, pay)
    assert {status for status, _, _ in results} == {201}
    assert len({body["id"] for _, body, _ in results}) == 1
    assert sum(1 for *_, replayed in results if replayed == "true") == 19
    assert Payment.objects.count() == 1
    assert SimulatedCharge.objects.count() == 1


def test_eight_reviewers_deciding_at_once_make_exactly_one_decision(client_for, user, staff_reviewer):
    from apps.accounts.tests.factories import UserFactory

    payment = (
        client_for(user)
        .post(
            "/api/v1/payments",
            {"amount": 900, "currency": "USD", "payment_method": "tok_riskLevelElevated"},
            format="json",
        )
        .json()
    )
    reviewers = [staff_reviewer] + [UserFactory(is_staff=True, roles=["reviewer"]) for _ in range(7)]
    clients = [client_for(reviewer) for reviewer in reviewers]

    def decide(index):
        decision = "approve" if index % 2 else "deny"
        response = clients[index].put(
            f"/api/v1/payments/{payment['id']}/review",
            {"decision": decision, "note": f"reviewer {index}"},
            format="json",
        )
        return response.status_code, response.json()

    results = run_at_once(8, decide)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 7
    assert all(body["error"]["code"] == "review_closed" for status, body in results if status == 409)
    review = Review.objects.get(payment_id=payment["id"])
    winner = next(body for status, body in results if status == 200)
    assert winner["review"]["note"] == review.note
    expected = "succeeded" if review.status == "approved" else "canceled"
    assert Payment.objects.get(pk=payment["id"]).status == expected


def test_eight_reviewers_deciding_a_held_deposit_at_once_make_exactly_one_decision(
    client_for, user, staff_reviewer
):
    from apps.accounts.tests.factories import UserFactory
    from apps.ledger.models import JournalEntry
    from apps.wallets.models import Transaction, Wallet
    from apps.wallets.services import wallet_create

    wallet = wallet_create(actor=user, user=user, currency="USD")
    deposit = (
        client_for(user)
        .post(
            f"/api/v1/wallets/{wallet.pk}/deposits",
            {"amount": 50_000_000, "payment_method": "tok_visa"},
            format="json",
        )
        .json()
    )
    assert deposit["status"] == "in_review"
    reviewers = [staff_reviewer] + [UserFactory(is_staff=True, roles=["reviewer"]) for _ in range(7)]
    clients = [client_for(reviewer) for reviewer in reviewers]

    def decide(index):
        decision = "approve" if index % 2 else "deny"
        response = clients[index].put(
            f"/api/v1/transactions/{deposit['id']}/review",
            {"decision": decision, "note": f"reviewer {index}"},
            format="json",
        )
        return response.status_code, response.json()

    results = run_at_once(8, decide)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 7
    assert all(body["error"]["code"] == "review_closed" for status, body in results if status == 409)
    review = Review.objects.get(deposit_id=deposit["id"])
    assert review.note in {f"reviewer {index}" for index in range(8)}
    winner = next(body for status, body in results if status == 200)
    txn = Transaction.objects.get(pk=deposit["id"])
    approved = review.status == "approved"
    assert winner["status"] == txn.status == ("completed" if approved else "failed")
    # Credited at most once, and only if approved.
    assert Wallet.objects.get(pk=wallet.pk).balance == (50_000_000 if approved else 0)
    assert JournalEntry.objects.count() == (1 if approved else 0)
    charge = SimulatedCharge.objects.get(idempotency_key=deposit["id"])
    assert charge.status == ("captured" if approved else "voided")


def test_a_parallel_burst_of_one_owners_payments_and_deposits_is_held_over_the_velocity_limit(
    client_for, user, settings
):
    from apps.wallets.models import Transaction
    from apps.wallets.services import wallet_create

    settings.RISK_VELOCITY_LIMIT = 6
    wallets = [wallet_create(actor=user, user=user, currency=currency) for currency in ("USD", "EUR")]
    clients = [client_for(user) for _ in range(12)]

    def send(index):
        if index % 3 == 0:  # deposits into two wallets, payments with a fresh customer_id each
            wallet = wallets[index % 2]
            response = clients[index].post(
                f"/api/v1/wallets/{wallet.pk}/deposits",
                {"amount": 1_000, "payment_method": "tok_visa"},
                format="json",
            )
        else:
            response = clients[index].post(
                "/api/v1/payments",
                {
                    "amount": 1_000,
                    "currency": "USD",
                    "payment_method": "tok_visa",
                    "customer_id": f"c{index}",
                },
                format="json",
            )
        return response.status_code, response.json()["status"]

    results = run_at_once(12, send)
    assert {status for status, _ in results} == {201}
    assert sorted(state for _, state in results).count("in_review") == 6
    held = (
        Payment.objects.filter(status="in_review").count()
        + Transaction.objects.filter(status="in_review").count()
    )
    assert held == 6


def test_one_payment_per_billing_period_however_many_workers_race(user):
    from apps.payments.services import payment_create

    def charge(index):
        return payment_create(
            actor=None,
            owner=user,
            amount=999,
            currency="USD",
            payment_method="tok_visa",
            subscription_id="sub_01TEST0000000000000000000",
            billing_period="2026-11-01T00:00:00+00:00",
        ).pk

    ids = run_at_once(10, charge)
    assert len(set(ids)) == 1
    assert Payment.objects.get(pk=ids[0]).status == "succeeded"
    assert SimulatedCharge.objects.count() == 1


def test_wallet_payments_refunds_and_transfers_at_once_never_deadlock_or_overdraw(user, other_user):
    from django.core.management import call_command

    from apps.payments.services import payment_capture, payment_create, payment_refund
    from apps.wallets.models import Wallet
    from apps.wallets.services import wallet_create, wallet_deposit, wallet_transfer

    mine = wallet_create(actor=user, user=user, currency="USD")
    theirs = wallet_create(actor=other_user, user=other_user, currency="USD")
    for wallet, owner in ((mine, user), (theirs, other_user)):
        wallet_deposit(actor=owner, user=owner, wallet_id=wallet.pk, amount=50_000, payment_method="tok_visa")

    def work(index):
        done = 0
        for round_ in range(6):
            if index % 3 == 0:
                payment = payment_create(
                    actor=user,
                    owner=user,
                    amount=300,
                    currency="USD",
                    payment_method=f"wallet:{mine.pk}",
                    capture_method="manual",
                )
                payment_capture(actor=user, owner=user, payment_id=payment.pk, amount=200)
                payment_refund(actor=user, owner=user, payment_id=payment.pk, amount=50)
            elif index % 3 == 1:
                wallet_transfer(
                    actor=user,
                    user=user,
                    source_wallet_id=mine.pk,
                    destination_wallet_id=theirs.pk,
                    amount=70,
                )
            else:
                wallet_transfer(
                    actor=other_user,
                    user=other_user,
                    source_wallet_id=theirs.pk,
                    destination_wallet_id=mine.pk,
                    amount=40 + round_,
                )
            done += 1
        return done

    assert run_at_once(6, work) == [6] * 6
    assert all(w.balance >= 0 for w in Wallet.objects.all())
    call_command("verify_ledger")
