"""Every write to notifications: creating them from events, sending each once, retrying, giving up.

    events (outbox, a batch) ─► consumer ─► notifications_create_many: one row per (event,
                                recipient, template), in the consumer's transaction
        └► right after it commits, in the same task: notifications_send of the batch
    notifications_send: claim (pending → sending, ONE statement under the row locks) ─► ONE SMTP
        connection, one message at a time (no transaction open) ─► sent (together, one
        transaction) | pending, due again after a backoff | failed with a dead letter
    sweep (beat, every minute): sends what is due — a retry whose backoff is over, or a new email
        whose send never ran (the worker died before it) — and fails what is stuck mid-send

One task per batch of changes does it all: the events' delivery writes the emails and sends them
over one connection (bench/worker_profile.py: a task, a claim and a transaction less per change
than a send task of their own). Retries are kept in the rows (`next_attempt_at`), not as broker
countdowns, which RabbitMQ's consumer timeout would kill when long (celery/celery#6760).

The claim is what makes a send happen once: only the worker that moved the row from `pending` to
`sending` talks to the mail server; any other attempt (a redelivered message, the sweep, a
duplicate) finds it `sending` or `sent` and does nothing. A worker that dies after claiming
leaves the row `sending`: it may or may not have sent, so it is never resent on its own — the sweep
fails it after NOTIFICATION_SENDING_TIMEOUT_SECONDS with a dead letter an operator can replay.
"""

from apps.notifications.services.creating import Message, notifications_create, notifications_create_many
from apps.notifications.services.rendering import message_id
from apps.notifications.services.sending import (
    DEAD_LETTER_KIND,
    Delivery,
    S,
    Sending,
    notification_payload,
    notification_send,
    notifications_send,
)
from apps.notifications.services.sweeping import notification_requeue, notifications_sweep

__all__ = [
    "DEAD_LETTER_KIND",
    "S",
    "Delivery",
    "Message",
    "Sending",
    "message_id",
    "notification_payload",
    "notification_requeue",
    "notification_send",
    "notifications_create",
    "notifications_create_many",
    "notifications_send",
    "notifications_sweep",
]
