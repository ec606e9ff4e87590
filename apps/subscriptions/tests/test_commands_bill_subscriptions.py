"""manage.py bill_subscriptions: --as-of, --dry-run, progress on stderr, summary on stdout."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.payments.models import Payment
from apps.subscriptions.models import Subscription

from .factories import at, payments_of

pytestmark = pytest.mark.django_db

T0 = at("2026-03-01 00:00")


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("bill_subscriptions", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_pass_shows_progress_on_stderr_and_a_summary_on_stdout(subscribe):
    for cycle in ("daily", "weekly", "monthly"):
        subscribe(now=T0, billing_cycle=cycle)
    subscribe(now=T0, billing_cycle="daily", payment_method="tok_chargeDeclined")

    out, err = run("--as-of", "2026-03-02T00:00:00Z")

    # The daily one renews; the declined one's retry (one day later) fails again.
    assert "charged 1, failed 1, skipped 0" in out
    assert "2/2" in err
    assert "[" in err


def test_dry_run_lists_what_is_due_and_changes_nothing(subscribe):
    monthly = subscribe(now=T0)
    ending = subscribe(now=T0, billing_cycle="weekly")
    from apps.subscriptions.services import subscription_cancel

    subscription_cancel(actor=None, owner=ending.owner, subscription_id=ending.pk, at_period_end=True, now=T0)
    payments = Payment.objects.count()
    before = list(Subscription.objects.order_by("pk").values())

    out, _ = run("--as-of", "2026-04-01", "--dry-run")

    assert f"would charge {monthly.pk} 15.00 USD for 2026-04-01 to 2026-05-01" in out
    assert f"would end {ending.pk} (canceled at period end)" in out
    assert "2 subscription(s) due; nothing changed" in out
    assert Payment.objects.count() == payments
    assert list(Subscription.objects.order_by("pk").values()) == before


def test_as_of_accepts_a_date_or_a_timestamp_and_refuses_anything_else(subscribe):
    subscription = subscribe(now=T0)
    run("--as-of", "2026-04-01")
    assert len(payments_of(subscription.pk)) == 2
    with pytest.raises(CommandError, match="--as-of must be an ISO 8601"):
        run("--as-of", "next tuesday")
    with pytest.raises(CommandError, match="--as-of must be an ISO 8601"):
        run("--as-of", "2026-02-30")


def test_without_as_of_it_bills_what_is_due_now(subscribe, user):
    from django.utils import timezone

    subscription = subscribe(now=timezone.now() - timezone.timedelta(days=1), billing_cycle="daily")
    out, _ = run()
    assert "charged 1," in out
    assert len(payments_of(subscription.pk)) == 2


def test_help_describes_the_options():
    from django.core.management import load_command_class

    command = load_command_class("apps.subscriptions", "bill_subscriptions")
    text = command.create_parser("manage.py", "bill_subscriptions").format_help()
    assert "--as-of" in text
    assert "--dry-run" in text


def test_a_subscription_that_cannot_be_billed_does_not_stop_the_others_and_fails_the_command(subscribe):
    from django.db import connection

    broken = subscribe(now=T0)
    healthy = subscribe(now=T0)
    with connection.cursor() as cursor:
        # A ciphertext that no longer authenticates (restored from elsewhere, altered by hand).
        cursor.execute(
            "UPDATE subscriptions_subscription SET payment_method = %s WHERE id = %s",
            ["v1.dev.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", broken.pk],
        )

    with pytest.raises(CommandError, match="1 subscription\\(s\\) could not be billed"):
        run("--as-of", "2026-04-01")

    assert len(payments_of(healthy.pk)) == 2
    assert len(payments_of(broken.pk)) == 1
    # Its claim stays until the lease runs out: the next passes don't spin on it.
    lease = Subscription.objects.filter(pk=broken.pk).values_list("billing_claimed_until", flat=True).get()
    assert lease is not None
