"""How a request proves who it is: `Bearer <access JWT>` or `Api-Key <key>`.

Either way `request.user` is the `User`; `request.auth` is the access token or the `ApiKey`.
Failures raise DRF's `AuthenticationFailed` (not our ApplicationError) because DRF only marks the
request unauthenticated for its own exception types; the core handler renders them as 401.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, Token

from apps.accounts.models import ApiKey, User
from apps.accounts.selectors import api_key_get_by_secret
from apps.accounts.services import api_key_record_use
from apps.accounts.session_cache import SessionNotLive, session_user
from apps.accounts.tokens import SESSION_CLAIM, read_access_token


class SessionJWTAuthentication(JWTAuthentication):
    """An access JWT whose session (`sid` claim) is still alive and belongs to its user (`sub`).

    Both the session check and the user are answered from the cache (`apps.accounts.session_cache`,
    one round trip), so once cached a request costs no query at all; a deactivated user, a role
    taken away or a password changed take effect on the next request (the cache is invalidated
    on commit), and with the cache down the database answers.
    """

    def get_validated_token(self, raw_token: bytes) -> AccessToken:
        try:
            return read_access_token(raw_token)
        except TokenError:
            raise exceptions.AuthenticationFailed("The access token is invalid or has expired.")

    # simplejwt types the user as a TypeVar of its own; this backend returns the project's User.
    def get_user(self, validated_token: Token) -> User:  # type: ignore[override]
        # The session must be alive and be the token's user's: a `sid` names a session, not a user.
        try:
            user = session_user(
                session_id=str(validated_token[SESSION_CLAIM]),
                user_id=str(validated_token.get(api_settings.USER_ID_CLAIM)),
            )
        except SessionNotLive:
            raise exceptions.AuthenticationFailed("This session has ended; log in again.")
        if user is None:
            raise exceptions.AuthenticationFailed("The user of this token is inactive or gone.")
        return user


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "api-key"

    def authenticate(self, request) -> tuple[User, ApiKey] | None:
        scheme, _, secret = get_authorization_header(request).decode("latin-1").partition(" ")
        if scheme.lower() != self.keyword:
            return None
        secret = secret.strip()
        if not secret or " " in secret:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Api-Key <key>'.")
        api_key = api_key_get_by_secret(secret=secret, cached=True)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        api_key_record_use(api_key=api_key)
        user = api_key.user
        user.customer_role_only = True  # a key acts for its user's customer role only (API.md)
        return user, api_key

    def authenticate_header(self, request) -> str:
        return 'Api-Key realm="api"'


class SessionJWTScheme(OpenApiAuthenticationExtension):
    target_class = SessionJWTAuthentication
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name=api_settings.AUTH_HEADER_NAME,
            token_prefix=api_settings.AUTH_HEADER_TYPES[0],
            bearer_format="JWT",
        )


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, with a key from `POST /api/v1/api-keys`.",
        }
