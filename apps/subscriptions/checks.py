"""System checks: a billing engine misconfigured must stop `manage.py check`, not bill wrongly."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register()
def check_billing_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if settings.SUBSCRIPTION_FINAL_STATUS not in ("unpaid", "canceled"):
        errors.append(
            checks.Error("SUBSCRIPTION_FINAL_STATUS must be 'unpaid' or 'canceled'.", id="subscriptions.E001")
        )
    if any(days < 0 for days in settings.SUBSCRIPTION_DUNNING_DAYS):
        errors.append(
            checks.Error("SUBSCRIPTION_DUNNING_DAYS must be whole days >= 0.", id="subscriptions.E002")
        )
    # A zero lease would let a pass re-claim what it just failed to charge, forever.
    if settings.SUBSCRIPTION_BILLING_LEASE_SECONDS < 1 or settings.SUBSCRIPTION_BILLING_BATCH_SIZE < 1:
        errors.append(
            checks.Error(
                "SUBSCRIPTION_BILLING_LEASE_SECONDS and SUBSCRIPTION_BILLING_BATCH_SIZE must be >= 1.",
                id="subscriptions.E003",
            )
        )
    return errors
