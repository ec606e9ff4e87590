"""JWTs bound to an `AuthSession`: both tokens of a pair carry the session id in the `sid` claim."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from apps.accounts.errors import RefreshTokenInvalid
from apps.accounts.models import AuthSession

SESSION_CLAIM = "sid"


class SessionRefreshToken(RefreshToken):
    def verify(self) -> None:
        # Skips simplejwt's blacklist check on purpose: the refresh service must tell a rotated-away
        # token (a replay: the whole session is revoked) from a forged or expired one (a plain 401).
        Token.verify(self)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: str
    refresh: str
    refresh_jti: str


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    jti: str
    session_id: str
    user_id: str


def session_ends_at(session: AuthSession) -> datetime:
    """When the session ends at the latest, however often its refresh token is rotated."""
    return session.created_at + timedelta(seconds=settings.SESSION_MAX_AGE_SECONDS)


def issue_token_pair(*, session: AuthSession) -> TokenPair:
    """Mints a pair for the session and records the refresh token as outstanding (for the blacklist).

    Neither token outlives the session's maximum age (`session_ends_at`). The outstanding row
    keeps a SHA-256 fingerprint instead of the token simplejwt would store, so a copy of the
    database holds no usable refresh token.
    """
    refresh = SessionRefreshToken()
    refresh[api_settings.USER_ID_CLAIM] = str(session.user_id)
    refresh[SESSION_CLAIM] = session.id
    left = session_ends_at(session) - refresh.current_time
    if left < api_settings.REFRESH_TOKEN_LIFETIME:
        refresh.set_exp(lifetime=max(left, timedelta(0)))
    access = refresh.access_token
    if left < api_settings.ACCESS_TOKEN_LIFETIME:
        access.set_exp(from_time=refresh.current_time, lifetime=max(left, timedelta(0)))
    encoded = str(refresh)
    OutstandingToken.objects.create(
        user_id=session.user_id,
        jti=refresh[api_settings.JTI_CLAIM],
        token=hashlib.sha256(encoded.encode()).hexdigest(),
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    return TokenPair(access=str(access), refresh=encoded, refresh_jti=refresh[api_settings.JTI_CLAIM])


def read_refresh_token(raw: str) -> RefreshClaims:
    """Checks signature, expiry and type; raises `RefreshTokenInvalid` (401) otherwise."""
    try:
        token = SessionRefreshToken(raw)  # type: ignore[arg-type]  # takes the encoded token too
    except TokenError as exc:
        raise RefreshTokenInvalid() from exc
    claims = (
        token.get(api_settings.JTI_CLAIM),
        token.get(SESSION_CLAIM),
        token.get(api_settings.USER_ID_CLAIM),
    )
    if not all(isinstance(value, str) and value for value in claims):
        raise RefreshTokenInvalid()
    jti, session_id, user_id = claims
    return RefreshClaims(jti=jti, session_id=session_id, user_id=user_id)


def read_access_token(raw: bytes | str) -> AccessToken:
    """A signed, unexpired access token carrying a session id; raises TokenError otherwise."""
    token = AccessToken(raw)  # type: ignore[arg-type]  # takes the encoded token too
    if not isinstance(token.get(SESSION_CLAIM), str):
        raise TokenError("Token has no session")
    return token


def blacklist_refresh_tokens(*, jtis: list[str]) -> None:
    outstanding = OutstandingToken.objects.filter(jti__in=[jti for jti in jtis if jti])
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
