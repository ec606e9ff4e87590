"""What the events and webhook-endpoint APIs refuse. Rendered by apps.core.exception_handler."""

from apps.core.errors import Conflict, InvalidRequest, NotFound


class EventNotFound(NotFound):
    default_message = "No such event."


class WebhookEndpointNotFound(NotFound):
    default_message = "No such webhook endpoint."


class WebhookDeliveryNotFound(NotFound):
    default_message = "No such webhook delivery."


class UrlInvalid(InvalidRequest):
    code = "url_invalid"
    default_message = "url must be an http or https URL of a public address."


class EventTypeUnknown(InvalidRequest):
    code = "event_type_unknown"
    default_message = "Unknown event type."


class WebhookEndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"
    default_message = "The webhook endpoint is disabled: enable it before retrying its deliveries."
