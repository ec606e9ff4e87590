"""What subscription services refuse, as API.md names it. Rendered by apps.core.exception_handler."""

from apps.core.errors import Conflict, InvalidRequest, NotFound


class SubscriptionNotFound(NotFound):
    default_message = "No such subscription."


class SubscriptionCanceled(Conflict):
    code = "subscription_canceled"
    default_message = "This subscription is canceled and can no longer be changed."


class SubscriptionUnpaid(Conflict):
    code = "subscription_unpaid"
    default_message = "This subscription is unpaid after its last payment retry and can no longer be changed."


class NothingToUpdate(InvalidRequest):
    code = "parameter_missing"
    default_message = "Send at least one of amount, billing_cycle, payment_method, plan_id, metadata."
