"""Every write of accounts: registration, login, token rotation, logout, API keys.

Each state change commits in one durable transaction together with its audit row and outbox
event. Where a refusal must still leave a trace (a failed login, a replayed refresh token), the
trace commits first and the caller raises after, because raising inside the transaction would
roll the trace back with it.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import salted_hmac

from apps.accounts import ratelimits
from apps.accounts.errors import (
    EmailTaken,
    InvalidCredentials,
    PasswordResetTokenInvalid,
    RefreshTokenInvalid,
    RefreshTokenReused,
    SessionExpired,
    SessionRevoked,
    TooManyFailedLogins,
    WeakPassword,
)
from apps.accounts.keys import display_prefix, hash_api_key_secret, new_api_key_secret
from apps.accounts.models import ApiKey, AuthSession, PasswordResetToken, Roles, User
from apps.accounts.selectors import user_get_by_email
from apps.accounts.session_cache import api_key_use_is_new, remember_revoked, user_changed
from apps.accounts.tokens import (
    RefreshClaims,
    TokenPair,
    blacklist_refresh_tokens,
    issue_token_pair,
    read_refresh_token,
    session_ends_at,
)
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.correlation import get_request_meta
from apps.core.deferred import enqueue
from apps.core.outbox import emit_event

logger = logging.getLogger(__name__)

# last_used_at is for people ("used today?"), so one write a minute per key is plenty.
API_KEY_USE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Login:
    user: User
    session: AuthSession
    tokens: TokenPair


# --- users --------------------------------------------------------------------------------------


def user_register(
    *,
    email: str,
    password: str,
    full_name: str = "",
    roles: Iterable[str] = (Roles.CUSTOMER,),
    is_staff: bool = False,
    is_superuser: bool = False,
    actor: Actor = None,
) -> User:
    """Creates a user with the given roles. 400 `password_too_weak`, 409 `email_taken` (any case)."""
    user = User(
        email=User.objects.normalize_email(email).strip(),
        full_name=full_name,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise WeakPassword(" ".join(exc.messages), details={"password": exc.messages})
    # Hashed before the transaction opens: the hasher is slow on purpose.
    user.set_password(password)
    return _user_insert(user=user, roles=sorted(set(roles)), actor=actor)


@transaction.atomic(durable=True)
def _user_insert(*, user: User, roles: list[str], actor: Actor) -> User:
    try:
        with transaction.atomic():
            user.save(force_insert=True)
    except IntegrityError as exc:  # the only unique columns of a new user are its email's
        raise EmailTaken() from exc
    user.groups.set(_role_groups(roles))
    audit_record(
        actor=actor,
        action="user.registered",
        entity_type="user",
        entity_id=user.id,
        after={
            "email": user.email,
            "full_name": user.full_name,
            "roles": roles,
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
        },
    )
    emit_event(event_type="user.registered", aggregate=user, payload={"user_id": user.id, "roles": roles})
    return user


def _role_groups(roles: Iterable[str]) -> list[Group]:
    # get_or_create, not get: a flushed test database or a fresh one loses the migration's rows.
    return [Group.objects.get_or_create(name=role)[0] for role in roles]


# --- login, refresh, logout ---------------------------------------------------------------------


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


def auth_refresh(*, refresh: str) -> TokenPair:
    """Rotates the session's refresh token. Replaying a rotated-away token revokes the session;
    so does a session older than SESSION_MAX_AGE_SECONDS (401 `session_expired`): rotation mints
    fresh refresh tokens, never a longer session."""
    rotated = _session_rotate(claims=read_refresh_token(refresh))
    if isinstance(rotated, Exception):
        raise rotated  # after the commit: the revocation stands
    return rotated


@transaction.atomic(durable=True)
def _session_rotate(*, claims: RefreshClaims) -> TokenPair | RefreshTokenReused | SessionExpired:
    session = _lock_session(claims)
    if _revoked_for_replay(session=session, claims=claims):
        return RefreshTokenReused()
    if timezone.now() >= session_ends_at(session):
        _session_revoke_audited(session=session, reason="max_age")
        return SessionExpired()
    tokens = issue_token_pair(session=session)
    blacklist_refresh_tokens(jtis=[claims.jti])
    session.refresh_jti = tokens.refresh_jti
    session.refreshed_at = timezone.now()
    session.save(update_fields=["refresh_jti", "refreshed_at"])
    return tokens


def auth_logout(*, refresh: str) -> None:
    """Ends the refresh token's session: it and every access token of the session stop working."""
    if not _session_logout(claims=read_refresh_token(refresh)):
        raise RefreshTokenReused()


@transaction.atomic(durable=True)
def _session_logout(*, claims: RefreshClaims) -> bool:
    session = _lock_session(claims)
    if _revoked_for_replay(session=session, claims=claims):
        return False
    _session_revoke(session=session, reason="logout")
    audit_record(
        actor=session.user,
        action="user.logged_out",
        entity_type="user",
        entity_id=session.user_id,
        after={"session_id": session.id},
    )
    emit_event(
        event_type="user.logged_out",
        aggregate=session.user,
        payload={"user_id": session.user_id, "session_id": session.id},
    )
    return True


def _lock_session(claims: RefreshClaims) -> AuthSession:
    """The token's session, locked: two uses of one refresh token are judged one after the other."""
    session = (
        AuthSession.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(pk=claims.session_id, user_id=claims.user_id)
        .first()
    )
    if session is None:
        raise RefreshTokenInvalid()
    if session.revoked_at is not None or not session.user.is_active:
        raise SessionRevoked()
    return session


def _revoked_for_replay(*, session: AuthSession, claims: RefreshClaims) -> bool:
    """A refresh token of the session other than its live one was rotated away: someone replays it.

    Either the thief or the user holds the live token and nobody can tell which, so the whole
    session goes (RFC 6819 5.2.2.3, refresh token rotation).
    """
    if claims.jti == session.refresh_jti:
        return False
    _session_revoke_audited(session=session, reason="refresh_token_reuse")
    emit_event(
        event_type="session.revoked",
        aggregate=session,
        payload={"session_id": session.id, "user_id": session.user_id, "reason": session.revoked_reason},
    )
    logger.warning("refresh token replayed; session %s revoked", session.id)
    return True


def _session_revoke_audited(*, session: AuthSession, reason: str) -> None:
    """Revokes the session on the system's own decision (replay, age) and says so in the audit trail."""
    _session_revoke(session=session, reason=reason)
    audit_record(
        actor=None,
        action="session.revoked",
        entity_type="auth_session",
        entity_id=session.id,
        before={"revoked_at": None},
        after={
            "revoked_at": session.revoked_at.isoformat() if session.revoked_at else None,
            "reason": reason,
        },
    )


def _session_revoke(*, session: AuthSession, reason: str) -> None:
    session.revoked_at = timezone.now()
    session.revoked_reason = reason
    session.save(update_fields=["revoked_at", "revoked_reason"])
    blacklist_refresh_tokens(jtis=[session.refresh_jti])
    # robust: the commit stands even if the cache is unreachable; its TTL bounds the staleness.
    transaction.on_commit(functools.partial(remember_revoked, session_id=session.id), robust=True)


def user_sessions_end(*, user: User, reason: str, actor: Actor = None) -> list[str]:
    """Ends every live session of the user: all its refresh tokens dead, its access tokens refused
    from the commit on (the session cache is overwritten then). Returns the ids of the sessions.

    The one way sessions end for a password change, wherever it is made (`POST /auth/password`,
    a reset, the admin: `apps.accounts.signals`). Joins the caller's transaction if there is one.
    """
    with transaction.atomic():
        sessions = list(
            AuthSession.objects.select_for_update(of=("self",))
            .filter(user=user, revoked_at__isnull=True)
            .order_by("pk")
        )
        for session in sessions:
            _session_revoke(session=session, reason=reason)
        # and the cached user (a new password is stored with an UPDATE, which sends no signal)
        transaction.on_commit(functools.partial(user_changed, user_ids=[user.pk]), robust=True)
        ended = [session.id for session in sessions]
        audit_record(
            actor=actor,
            action="user.sessions_ended",
            entity_type="user",
            entity_id=user.id,
            after={"reason": reason, "sessions": ended},
        )
        emit_event(
            event_type="user.sessions_ended",
            aggregate=user,
            payload={"user_id": user.id, "reason": reason, "sessions": ended},
        )
    return ended


# --- passwords ----------------------------------------------------------------------------------


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
    the worker that writes the email needs only the id, yet neither alone yields the token."""
    return salted_hmac("apps.accounts.password_reset", reset_id, algorithm="sha256").hexdigest()


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
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/password_reset/body.txt", context),
        to=[user.email],
    )
    message.attach_alternative(render_to_string("emails/password_reset/body.html", context), "text/html")
    message.send()
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


# --- API keys -----------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def api_key_create(*, user: User, name: str, actor: Actor) -> tuple[ApiKey, str]:
    """Returns the key and its secret. The secret exists only in this return value, never stored."""
    secret = new_api_key_secret()
    api_key = ApiKey.objects.create(
        user=user, name=name, prefix=display_prefix(secret), hashed_key=hash_api_key_secret(secret)
    )
    audit_record(
        actor=actor,
        action="api_key.created",
        entity_type="api_key",
        entity_id=api_key.id,
        after={"name": api_key.name, "user_id": user.id},
    )
    emit_event(
        event_type="api_key.created",
        aggregate=api_key,
        payload={"api_key_id": api_key.id, "user_id": user.id, "name": api_key.name},
    )
    return api_key, secret


@transaction.atomic(durable=True)
def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    """Revokes at once (the authentication cache is told on commit: apps.accounts.signals).
    Revoking twice is a no-op."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="api_key.revoked",
        entity_type="api_key",
        entity_id=api_key.id,
        before={"revoked_at": None},
        after={"revoked_at": api_key.revoked_at.isoformat()},
    )
    emit_event(
        event_type="api_key.revoked",
        aggregate=api_key,
        payload={"api_key_id": api_key.id, "user_id": api_key.user_id},
    )
    return api_key


def api_key_record_use(*, api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < API_KEY_USE_RESOLUTION:
        return
    # The key may come from the authentication cache, its last use as old as the snapshot.
    if not api_key_use_is_new(api_key_id=api_key.pk, seconds=int(API_KEY_USE_RESOLUTION.total_seconds())):
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
