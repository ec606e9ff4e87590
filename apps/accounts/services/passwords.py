"""Passwords: changing one, and the reset by emailed single-use token.

Every new password ends every session of its user (`user_sessions_end`)."""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import salted_hmac

from apps.accounts import ratelimits
from apps.accounts.errors import (
    PasswordResetTokenInvalid,
    WeakPassword,
)
from apps.accounts.models import PasswordResetToken, User
from apps.accounts.selectors import user_get_by_email
from apps.accounts.services.logins import auth_credentials_check
from apps.accounts.services.sessions import user_sessions_end
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.deferred import enqueue
from apps.core.mail import PreparedEmail
from apps.core.outbox import emit_event

logger = logging.getLogger(__name__)


def user_password_change(*, user: User, current_password: str, new_password: str) -> None:
    """`POST /auth/password`: the current password is checked like a login (counted, locked out,
    audited; 401/429), the new one validated (400), then every session of the user ends."""
    auth_credentials_check(email=user.email, password=current_password, channel="password_change")
    hashed = _new_password_hash(user=user, password=new_password)
    _password_store(user=user, hashed=hashed, reason="password_changed", actor=user)


def _new_password_hash(*, user: User, password: str) -> str:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise WeakPassword(
            " ".join(exc.messages), param="new_password", details={"new_password": exc.messages}
        )
    # Hashed before any transaction opens: the hasher is slow on purpose.
    probe = User()
    probe.set_password(password)
    return probe.password


@transaction.atomic(durable=True)
def _password_store(*, user: User, hashed: str, reason: str, actor: Actor) -> None:
    # A queryset update, not save(): the admin's signal (a saved new password) is for other paths.
    User.objects.filter(pk=user.pk).update(password=hashed)
    user.password = hashed
    _password_changed(user=user, reason=reason, actor=actor)


def _password_changed(*, user: User, reason: str, actor: Actor) -> None:
    audit_record(
        actor=actor,
        action="user.password_changed",
        entity_type="user",
        entity_id=user.id,
        after={"reason": reason},
    )
    emit_event(
        event_type="user.password_changed", aggregate=user, payload={"user_id": user.id, "reason": reason}
    )
    user_sessions_end(user=user, reason=reason, actor=actor)


def user_password_changed_elsewhere(*, user: User) -> None:
    """A new password saved on the user outside these services (the admin's password forms, the
    `changepassword` command): audited, and every session of the user ends, as for the others."""
    with transaction.atomic():
        _password_changed(user=user, reason="password_changed", actor=None)


def password_reset_request(*, email: str) -> None:
    """`POST /auth/password-reset`: a known, active address gets an email with a single-use link
    valid PASSWORD_RESET_TOKEN_SECONDS. Any other address gets nothing, and the caller is told
    the same either way (no account enumeration); the email is sent by a worker, so neither does
    the response time wait on the mail server for a known address."""
    user = user_get_by_email(email=email)
    if user is None or not user.is_active:
        return
    # Per address, whoever asks from wherever: a mailbox is not flooded (still 202, nothing sent).
    sent = ratelimits.hit(f"password-reset:{_token_hash(user.email.lower())}", window_seconds=3600)
    if sent.exceeds(settings.PASSWORD_RESET_EMAILS_PER_HOUR):
        return
    reset = _password_reset_token_insert(user=user)
    transaction.on_commit(functools.partial(_password_reset_email_enqueue, reset_id=reset.id), robust=True)


def password_reset_token_create(*, user: User) -> str:
    """Records a reset link for the user and returns its token (what the email carries)."""
    return _reset_token(_password_reset_token_insert(user=user).id)


def _reset_token(reset_id: str) -> str:
    """The token of a reset row: a keyed MAC of its id, so the row stores only the token's hash and
    the worker that writes the email needs only the id, yet neither alone yields the token.

    URL-safe base64, not hex: about one hex digest in a hundred holds a Luhn-valid run of 13 or more
    decimal digits, which the card-data guard refuses in every request body, so that reset link
    could never be confirmed."""
    mac = salted_hmac("apps.accounts.password_reset", reset_id, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


@transaction.atomic(durable=True)
def _password_reset_token_insert(*, user: User) -> PasswordResetToken:
    now = timezone.now()
    reset = PasswordResetToken(
        user=user, created_at=now, expires_at=now + timedelta(seconds=settings.PASSWORD_RESET_TOKEN_SECONDS)
    )
    reset.hashed_token = _token_hash(_reset_token(reset.id))
    reset.save(force_insert=True)
    audit_record(
        actor=None,
        action="user.password_reset_requested",
        entity_type="user",
        entity_id=user.id,
        after={"reset_id": reset.id, "expires_at": reset.expires_at.isoformat()},
    )
    return reset


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _password_reset_email_enqueue(*, reset_id: str) -> None:
    from apps.accounts.tasks import send_password_reset_email  # tasks import services

    if not enqueue(send_password_reset_email, reset_id, fallback="a send from this request"):
        password_reset_email_send(reset_id=reset_id)


def password_reset_email_send(*, reset_id: str) -> bool:
    """Emails the link of a reset row that is still usable; False when there is nothing to send.
    Mail server errors propagate (the task retries them)."""
    reset = _live_reset(PasswordResetToken.objects.select_related("user").filter(pk=reset_id))
    if reset is None:
        return False
    user = reset.user
    context = {
        "site_name": "Paydesk",
        "name": user.full_name or user.email,
        "reset_url": f"{settings.PASSWORD_RESET_URL}?token={_reset_token(reset.id)}",
        "valid_minutes": settings.PASSWORD_RESET_TOKEN_SECONDS // 60,
        "notification": reset.id,
    }
    subject = " ".join(render_to_string("emails/password_reset/subject.txt", context).split())
    PreparedEmail(
        subject=subject,
        body=render_to_string("emails/password_reset/body.txt", context),
        html=render_to_string("emails/password_reset/body.html", context),
        to=[user.email],
    ).send()
    return True


def password_reset_confirm(*, token: str, new_password: str) -> None:
    """`POST /auth/password-reset/confirm`: sets the password and ends every session of the user.
    400 `token_invalid` for an unknown, used or expired token, 400 `password_too_weak`."""
    reset = _live_reset(PasswordResetToken.objects.select_related("user"), token)
    if reset is None:
        raise PasswordResetTokenInvalid()
    hashed = _new_password_hash(user=reset.user, password=new_password)
    if not _password_reset_apply(token=token, hashed=hashed):
        raise PasswordResetTokenInvalid()  # used by a concurrent confirm in the meantime


def _live_reset(
    queryset: QuerySet[PasswordResetToken], token: str | None = None
) -> PasswordResetToken | None:
    if token is not None:
        queryset = queryset.filter(hashed_token=_token_hash(token))
    return queryset.filter(
        used_at__isnull=True,
        expires_at__gt=timezone.now(),
        user__is_active=True,
    ).first()


@transaction.atomic(durable=True)
def _password_reset_apply(*, token: str, hashed: str) -> bool:
    reset = _live_reset(
        PasswordResetToken.objects.select_for_update(of=("self",)).select_related("user"), token
    )
    if reset is None:
        return False
    # Single use, and every other link of the user dies with it.
    PasswordResetToken.objects.filter(user_id=reset.user_id, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    user = reset.user
    User.objects.filter(pk=user.pk).update(password=hashed)
    user.password = hashed
    _password_changed(user=user, reason="password_reset", actor=user)
    return True
