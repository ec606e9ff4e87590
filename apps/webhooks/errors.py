from apps.core.errors import ApplicationError, Conflict, InvalidRequest, NotFound, ServiceUnavailable


class WebhookSignatureMissing(InvalidRequest):
    code = "webhook_signature_missing"
    default_message = "The webhook's signature header is missing."


class WebhookSignatureInvalid(InvalidRequest):
    code = "webhook_signature_invalid"
    default_message = "The webhook's signature does not match its body."


class WebhookSignatureExpired(InvalidRequest):
    code = "webhook_signature_expired"
    default_message = "The webhook's signature timestamp is outside the tolerance."


class WebhookPayloadInvalid(InvalidRequest):
    code = "webhook_payload_invalid"
    default_message = "The webhook's body is not an event this provider sends."


class WebhookBodyNotJson(InvalidRequest):
    code = "invalid_json"
    default_message = "The webhook's body must be a JSON object."


class WebhookBodyTooLarge(ApplicationError):
    status_code = 413
    code = "request_too_large"
    default_message = "The webhook's body is too large."


class WebhookNotConfigured(ServiceUnavailable):
    code = "webhook_not_configured"
    default_message = "Webhooks from this provider can't be verified: no signing secret is configured."


class WebhookEventNotFound(NotFound):
    default_message = "No such webhook event."


class WebhookEventAlreadyProcessed(Conflict):
    code = "webhook_event_processed"
    default_message = "This webhook event was already applied; there is nothing to replay."
