"""Every write of accounts: registration, login, token rotation, logout, passwords, API keys.

Each state change commits in one durable transaction together with its audit row and outbox
event. Where a refusal must still leave a trace (a failed login, a replayed refresh token), the
trace commits first and the caller raises after, because raising inside the transaction would
roll the trace back with it. The package's modules hold one subject each; this is their public API.
"""

from apps.accounts.services.keys import api_key_create, api_key_record_use, api_key_revoke
from apps.accounts.services.logins import (
    Login,
    admin_login,
    auth_credentials_check,
    auth_login,
    auth_session_start,
)
from apps.accounts.services.passwords import (
    password_reset_confirm,
    password_reset_email_send,
    password_reset_request,
    password_reset_token_create,
    user_password_change,
    user_password_changed_elsewhere,
)
from apps.accounts.services.sessions import auth_logout, auth_refresh, user_sessions_end
from apps.accounts.services.users import user_register

__all__ = [
    "Login",
    "admin_login",
    "api_key_create",
    "api_key_record_use",
    "api_key_revoke",
    "auth_credentials_check",
    "auth_login",
    "auth_logout",
    "auth_refresh",
    "auth_session_start",
    "password_reset_confirm",
    "password_reset_email_send",
    "password_reset_request",
    "password_reset_token_create",
    "user_password_change",
    "user_password_changed_elsewhere",
    "user_register",
    "user_sessions_end",
]
