from apps.core.errors import Conflict, InvalidRequest, NotFound, PermissionDenied


class PaymentNotFound(NotFound):
    default_message = "No such payment."


class PaymentUnexpectedState(Conflict):
    code = "payment_unexpected_state"
    default_message = "The payment is not in a state that allows this."


class CaptureExceedsAuthorized(InvalidRequest):
    code = "capture_exceeds_authorized"
    default_message = "The capture amount exceeds the authorized amount."


class RefundExceedsCaptured(InvalidRequest):
    code = "refund_exceeds_captured"
    default_message = "The refund amount exceeds what was captured and not yet refunded."


class ReviewClosed(Conflict):
    code = "review_closed"
    default_message = "This payment's review has already been decided."


class ReviewNotOpen(Conflict):
    code = "review_closed"
    default_message = "This payment is not held for review."


class ReviewPermissionRequired(PermissionDenied):
    code = "review_permission_required"
    default_message = "Deciding a review needs the review permission."


class ReviewOwnPayment(PermissionDenied):
    code = "review_own_payment"
    default_message = "A reviewer cannot decide a review of their own payment."


class NoteRequired(InvalidRequest):
    code = "parameter_missing"
    default_message = "A note is required to decide a review."


class InvalidPaymentMethod(InvalidRequest):
    code = "payment_method_invalid"
    default_message = "payment_method must be a gateway token (tok_…, pm_…) or wallet:<wallet id>."
