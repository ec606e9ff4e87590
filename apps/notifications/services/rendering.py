"""What an email says: its templates rendered with the row's context, composed once."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.template.loader import get_template

from apps.core.mail import PreparedEmail
from apps.notifications.models import Notification

SITE_NAME = "Paydesk"


def template_context(name: str, context: dict[str, Any]) -> dict[str, Any]:
    """`name` is how the email greets its reader: their full name, or else their address."""
    return {"site_name": SITE_NAME, "name": name, **context}


def render(name: str, context: dict[str, Any]) -> str:
    return get_template(name).render(context)  # compiled once per process (the cached loader)


def render_subject(template: str, context: dict[str, Any]) -> str:
    # One line, whatever the template's whitespace: a newline in a subject is a header injection.
    subject = " ".join(render(f"emails/{template}/subject.txt", context).split())
    return subject[: Notification._meta.get_field("subject").max_length]


def compose(notification: Notification, name: str, smtp: BaseEmailBackend) -> PreparedEmail:
    context = {**template_context(name, notification.context), "notification": notification.pk}
    return PreparedEmail(
        subject=notification.subject,
        body=render(f"emails/{notification.template}/body.txt", context),
        html=render(f"emails/{notification.template}/body.html", context),
        to=[notification.to],
        # A stable Message-ID: the one email of this row, recognisable downstream (and by tests).
        headers={"Message-ID": message_id(notification.pk)},
        connection=smtp,
    )


def message_id(notification_id: str) -> str:
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "paydesk.local"
    return f"<{notification_id}@{domain}>"
