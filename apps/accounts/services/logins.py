"""Logging in: the credential check with its per-address back-off, the audit of every attempt
(API and admin alike), and opening a session."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from apps.accounts import ratelimits
from apps.accounts.errors import (
    InvalidCredentials,
    TooManyFailedLogins,
)
from apps.accounts.models import AuthSession, User
from apps.accounts.selectors import user_get_by_email
from apps.accounts.tokens import (
    TokenPair,
    issue_token_pair,
)
from apps.audit.services import audit_record
from apps.core.correlation import get_request_meta
from apps.core.outbox import emit_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Login:
    user: User
    session: AuthSession
    tokens: TokenPair


def auth_login(*, email: str, password: str) -> Login:
    """Checks the credentials and opens a session. 401 `invalid_credentials`, 429 when locked."""
    user = auth_credentials_check(email=email, password=password)
    return auth_session_start(user=user)


def auth_credentials_check(*, email: str, password: str, channel: str = "api") -> User:
    """The user whose credentials these are, or 401 `invalid_credentials` / 429 when locked out.

    The one password check of every login (API, admin) and of a password change. Failures are
    counted per (account, client address) and per account (see `_LoginGuard`); an attempt is
    counted *before* the password is checked and a success clears its address's count, so even
    concurrent guesses from one address get at most LOGIN_FAILURE_LIMIT checks before the lock.
    """
    guard = _LoginGuard(email)
    guard.admit()
    user = user_get_by_email(email=email)
    if user is None:
        # The same hashing cost as a real check, so response times don't tell which emails exist.
        User().set_password(password)
        verified = False
    else:
        verified = user.check_password(password) and user.is_active
    if user is None or not verified:
        guard.failed()
        _login_failed(user=user, email=email, channel=channel)
        raise InvalidCredentials()
    guard.succeeded()
    return user


def admin_login(*, email: str, password: str) -> User:
    """The staff user signing in to the admin: the API login's limits and audit, then is_staff.

    401 `invalid_credentials` for wrong credentials and for a user who is not staff (audited as
    `not_staff`), 429 when locked out. A success is audited; the admin opens its own session.
    """
    user = auth_credentials_check(email=email, password=password, channel="admin")
    if not user.is_staff:
        _login_failed(user=user, email=email, channel="admin", reason="not_staff")
        raise InvalidCredentials()
    _admin_logged_in(user=user)
    return user


@transaction.atomic(durable=True)
def _admin_logged_in(*, user: User) -> None:
    audit_record(
        actor=user,
        action="user.logged_in",
        entity_type="user",
        entity_id=user.id,
        after={"channel": "admin"},
    )
    emit_event(event_type="user.logged_in", aggregate=user, payload={"user_id": user.id, "channel": "admin"})


class _LoginGuard:
    """Brute-force limits of one login attempt, kept in the shared cache (`ratelimits`).

    Per (account, address): LOGIN_FAILURE_LIMIT failures pass, then the address is locked out of
    that account for LOGIN_FAILURE_WINDOW_SECONDS, and each further failure doubles the lock, up
    to LOGIN_LOCK_MAX_SECONDS. Another address is not affected, so a stranger cannot lock the
    owner out. Per account: past LOGIN_ACCOUNT_FAILURE_LIMIT failures from all addresses in a
    window (a guess spread over many addresses), each address gets a single failure before its
    lock starts. An address that has not failed always gets its attempt.
    """

    def __init__(self, email: str) -> None:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        address = get_request_meta().get("ip") or "unknown"
        self.account_counter = f"login-failures:{account}"
        self.address_counter = f"login-failures:{account}:{address}"

    def admit(self) -> None:
        under_attack = ratelimits.peek(self.account_counter) >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT
        attempt = ratelimits.attempt(
            self.address_counter,
            free=1 if under_attack else settings.LOGIN_FAILURE_LIMIT,
            base_seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS,
            cap_seconds=settings.LOGIN_LOCK_MAX_SECONDS,
        )
        if not attempt.allowed:
            raise TooManyFailedLogins(retry_after=attempt.retry_after)

    def failed(self) -> None:
        ratelimits.hit(self.account_counter, window_seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)

    def succeeded(self) -> None:
        ratelimits.reset(self.address_counter)


@transaction.atomic(durable=True)
def _login_failed(*, user: User | None, email: str, channel: str, reason: str = "") -> None:
    # The API login's rows stay as they always were; other channels (the admin) say which they are.
    where = {} if channel == "api" else {"channel": channel}
    if user is None:
        # No user, so no aggregate for an event; the audit trail still sees the probe.
        audit_record(
            actor=None,
            action="user.login_failed",
            entity_type="user",
            entity_id="",
            after={"email": email.strip(), "reason": "unknown_email", **where},
        )
        return
    reason = reason or ("inactive" if not user.is_active else "wrong_password")
    audit_record(
        actor=None,
        action="user.login_failed",
        entity_type="user",
        entity_id=user.id,
        after={"reason": reason, **where},
    )
    emit_event(
        event_type="user.login_failed",
        aggregate=user,
        payload={"user_id": user.id, "reason": reason, **where},
    )


@transaction.atomic(durable=True)
def auth_session_start(*, user: User) -> Login:
    """Opens a session for an already authenticated user and mints its first token pair."""
    meta = get_request_meta()
    session = AuthSession(user=user, ip=_valid_ip(meta.get("ip")), user_agent=meta.get("user_agent") or "")
    tokens = issue_token_pair(session=session)
    session.refresh_jti = tokens.refresh_jti
    session.save(force_insert=True)
    User.objects.filter(pk=user.pk).update(last_login=session.created_at)
    audit_record(
        actor=user,
        action="user.logged_in",
        entity_type="user",
        entity_id=user.id,
        after={"session_id": session.id},
    )
    emit_event(
        event_type="user.logged_in", aggregate=user, payload={"user_id": user.id, "session_id": session.id}
    )
    return Login(user=user, session=session, tokens=tokens)


def _valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:  # e.g. a unix-socket server's REMOTE_ADDR
        return None
