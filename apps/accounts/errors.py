from apps.core.errors import AuthenticationFailed, Conflict, InvalidRequest, PermissionDenied, RateLimited


class InvalidCredentials(AuthenticationFailed):
    # One message for an unknown email, a wrong password and an inactive user: nothing to enumerate.
    code = "invalid_credentials"
    default_message = "Incorrect email or password."


class TooManyFailedLogins(RateLimited):
    code = "too_many_failed_logins"
    default_message = "Too many failed logins for this email; try again later."


class EmailTaken(Conflict):
    code = "email_taken"
    default_message = "A user with this email already exists."

    def __init__(self, message: str | None = None, **kwargs) -> None:
        kwargs.setdefault("param", "email")
        super().__init__(message, **kwargs)


class WeakPassword(InvalidRequest):
    code = "password_too_weak"
    default_message = "The password is too weak."

    def __init__(self, message: str | None = None, **kwargs) -> None:
        kwargs.setdefault("param", "password")
        super().__init__(message, **kwargs)


class RefreshTokenInvalid(AuthenticationFailed):
    code = "token_invalid"
    default_message = "The refresh token is invalid or has expired."


class SessionRevoked(AuthenticationFailed):
    code = "session_revoked"
    default_message = "This session has ended; log in again."


class SessionExpired(AuthenticationFailed):
    code = "session_expired"
    default_message = "This session has reached its maximum age; log in again."


class RefreshTokenReused(AuthenticationFailed):
    code = "refresh_token_reused"
    default_message = "This refresh token was already used. The session has been ended; log in again."


class ApiKeyNotAllowed(PermissionDenied):
    code = "api_key_not_allowed"
    default_message = "API keys cannot manage API keys; use a logged-in session."


class PasswordResetTokenInvalid(InvalidRequest):
    code = "token_invalid"
    default_message = "This password reset link is invalid, used or expired; ask for a new one."

    def __init__(self, message: str | None = None, **kwargs) -> None:
        kwargs.setdefault("param", "token")
        super().__init__(message, **kwargs)
