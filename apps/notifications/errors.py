"""What the notifications API refuses. Rendered by apps.core.exception_handler."""

from apps.core.errors import NotFound


class NotificationNotFound(NotFound):
    default_message = "No such notification."
