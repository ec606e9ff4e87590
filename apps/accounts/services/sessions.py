"""Sessions after login: refresh-token rotation, logout, revocation (a replayed token, the
maximum age) and ending every session of a user."""

from __future__ import annotations

import functools
import logging

from django.db import transaction
from django.utils import timezone

from apps.accounts.errors import (
    RefreshTokenInvalid,
    RefreshTokenReused,
    SessionExpired,
    SessionRevoked,
)
from apps.accounts.models import AuthSession, User
from apps.accounts.session_cache import remember_revoked, user_changed
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
from apps.core.outbox import emit_event

logger = logging.getLogger(__name__)


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
