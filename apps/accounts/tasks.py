"""Celery entry points for accounts: each loads by id and calls one service."""

import smtplib

from celery import shared_task

from apps.accounts import services


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=5,
)
def send_password_reset_email(reset_id: str) -> bool:
    """The reset link's email, sent while the link is usable (by the id: the token is derived)."""
    return services.password_reset_email_send(reset_id=reset_id)
