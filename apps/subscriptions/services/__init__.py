"""Every write to subscriptions, and the billing engine that charges them.

- `terms`: start (with or without a trial), change from the next period, cancel now or at period end
- `billing`: the billing pass (claim, charge, settle), dunning, refunding a charge that came too late
- `pending`: changes waiting for the next period or charge attempt; `records`: what both write

Other apps, commands, tasks and tests import from here only.
"""

from apps.subscriptions.services.billing import (
    BillingSummary,
    Outcome,
    subscription_bill,
    subscription_refund_late_charge,
    subscriptions_bill_due,
)
from apps.subscriptions.services.records import ChargePlan, subscription_payload
from apps.subscriptions.services.terms import (
    MAX_TRIAL_DAYS,
    subscription_cancel,
    subscription_create,
    subscription_update,
)

__all__ = [
    "MAX_TRIAL_DAYS",
    "BillingSummary",
    "ChargePlan",
    "Outcome",
    "subscription_bill",
    "subscription_cancel",
    "subscription_create",
    "subscription_payload",
    "subscription_refund_late_charge",
    "subscription_update",
    "subscriptions_bill_due",
]
