"""The subscription object is declared once (SubscriptionOutputSerializer) and is what it always was."""

import pytest
from django.utils import timezone
from rest_framework import serializers

from apps.core.timestamps import iso_z
from apps.subscriptions.apis import SubscriptionOutputSerializer, subscription_representation
from apps.subscriptions.models import Subscription
from apps.subscriptions.services import subscription_cancel, subscription_update

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def hand_built(subscription):
    """The representation as the API wrote it before the serializer declared it (the reference)."""
    pending = {}
    if subscription.pending_amount is not None:
        pending["amount"] = subscription.pending_amount
    if subscription.pending_billing_cycle:
        pending["billing_cycle"] = subscription.pending_billing_cycle
    if subscription.pending_plan_id:
        pending["plan_id"] = subscription.pending_plan_id
    if subscription.pending_payment_method:
        pending["payment_method"] = subscription.pending_payment_method
    return {
        "id": subscription.pk,
        "object": "subscription",
        "plan_id": subscription.plan_id,
        "amount": subscription.amount,
        "currency": subscription.currency,
        "billing_cycle": subscription.billing_cycle,
        "status": subscription.status,
        "payment_method": subscription.payment_method,
        "current_period_start": iso_z(subscription.current_period_start),
        "current_period_end": iso_z(subscription.current_period_end),
        "next_billing_date": iso_z(subscription.next_billing_date),
        "trial_end_date": iso_z(subscription.trial_end_date),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": iso_z(subscription.canceled_at),
        "metadata": subscription.metadata,
        "pending_update": pending or None,
        "latest_payment": subscription.latest_payment_id or None,
        "created_at": iso_z(subscription.created_at),
    }


def test_the_declared_subscription_equals_the_hand_built_one_and_drfs(subscribe, user):
    active = subscribe(now=NOW, metadata={"seats": 2})
    trial = subscribe(now=NOW, trial_days=14)
    pending = subscribe(now=NOW)
    subscription_update(
        actor=user,
        owner=user,
        subscription_id=pending.pk,
        amount=2500,
        billing_cycle="yearly",
        plan_id="team",
        payment_method="tok_mastercard",
    )
    ending = subscribe(now=NOW)
    subscription_cancel(actor=user, owner=user, subscription_id=ending.pk, at_period_end=True)
    canceled = subscribe(now=NOW)
    subscription_cancel(actor=user, owner=user, subscription_id=canceled.pk)

    shown = {s.pk: subscription_representation(s) for s in Subscription.objects.all()}
    assert len(shown) == 5
    for subscription in Subscription.objects.all():
        assert shown[subscription.pk] == hand_built(subscription)
        assert shown[subscription.pk] == serializers.Serializer.to_representation(
            SubscriptionOutputSerializer(), subscription
        )
    assert shown[trial.pk]["latest_payment"] is None
    assert shown[trial.pk]["trial_end_date"].endswith("Z")
    assert shown[active.pk]["pending_update"] is None
    assert shown[pending.pk]["pending_update"] == {
        "amount": 2500,
        "billing_cycle": "yearly",
        "plan_id": "team",
        "payment_method": "tok_mastercard",
    }
    assert shown[ending.pk]["cancel_at_period_end"] is True
    assert shown[canceled.pk]["canceled_at"].endswith("Z")
