from typing import ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from apps.core.ids import PrefixedIdField


class Roles:
    CUSTOMER = "customer"
    REVIEWER = "reviewer"
    ADMIN = "admin"
    ALL = (CUSTOMER, REVIEWER, ADMIN)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        # Matches the lower(email) unique index, so the admin login is an index lookup too.
        return self.alias(email_lower=Lower("email")).get(email_lower=username.strip().lower())

    def create_user(self, email: str, password: str | None = None, **fields):
        user = self.model(email=self.normalize_email(email).strip(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person or a merchant. Logs in with an email, unique whatever its case."""

    id = PrefixedIdField(prefix="usr")
    email = models.EmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=200, blank=True, default="")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the admin.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="user_email_ci_unique",
                violation_error_message="A user with this email already exists.",
            )
        ]

    # Set on the request's user when the call is made with an API key: staff powers need an
    # interactive login, so such a user has no permission at all (`has_perm`, user_has_permission).
    customer_role_only = False

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        _refuse_if_cached(self)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        _refuse_if_cached(self)
        return super().delete(*args, **kwargs)

    def has_perm(self, perm, obj=None) -> bool:
        return not self.customer_role_only and super().has_perm(perm, obj)

    def has_perms(self, perm_list, obj=None) -> bool:
        return not self.customer_role_only and super().has_perms(perm_list, obj)

    def has_module_perms(self, app_label) -> bool:
        return not self.customer_role_only and super().has_module_perms(app_label)

    @property
    def roles(self) -> list[str]:
        known = self.__dict__.get(CACHED_ROLES)  # set by authentication (apps.accounts.session_cache)
        if known is not None:
            return list(known)
        return sorted(self.groups.filter(name__in=Roles.ALL).values_list("name", flat=True))


# Instance attributes authentication sets on the request's user (apps.accounts.session_cache).
CACHED_ROLES = "_cached_roles"
FROM_CACHE = "_built_from_cache"


class CachedUserNotSaved(RuntimeError):
    """A user (or API key) built from the authentication cache is a read-only snapshot: saving it
    would write back whatever was cached (possibly a moment stale) over the row. Load it to change it."""


def _refuse_if_cached(instance: models.Model) -> None:
    if instance.__dict__.get(FROM_CACHE):
        raise CachedUserNotSaved(
            f"{instance._meta.model_name} {instance.pk} was built from the authentication cache; load it to save it"
        )


class AuthSession(models.Model):
    """One login: every access and refresh token minted for it carries its id in the `sid` claim.

    Revoking the session (logout, or reuse of a rotated refresh token) kills all of them at once,
    whatever their expiry. `refresh_jti` is the one refresh token of the session still allowed to
    rotate; presenting any other of its refresh tokens is a replay.
    """

    id = PrefixedIdField(prefix="ses")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    created_at = models.DateTimeField(default=timezone.now)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True, default="")
    refresh_jti = models.CharField(max_length=64, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="authsession_user_idx")]

    def __str__(self) -> str:
        return f"{self.id} ({self.user_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiKey(models.Model):
    """A server-to-server credential. Only a SHA-256 of the secret is stored; see `apps.accounts.keys` for why a fast hash."""

    id = PrefixedIdField(prefix="key")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters of the key, to recognise it.")
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        indexes = [models.Index(fields=["user", "-created_at"], name="apikey_user_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def save(self, *args, **kwargs) -> None:
        _refuse_if_cached(self)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        _refuse_if_cached(self)
        return super().delete(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class PasswordResetToken(models.Model):
    """A link sent by email to set a new password: single use, valid PASSWORD_RESET_TOKEN_SECONDS.

    Only a SHA-256 of the token is stored (like an API key's, a fast hash is enough for 256 bits
    of secret): a copy of the database resets nobody's password. The token itself is a keyed MAC
    (SECRET_KEY) of the row's id, so the worker that emails it is handed the id, never the token.
    """

    id = PrefixedIdField(prefix="pwr")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_reset_tokens")
    hashed_token = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="pwreset_user_idx")]

    def __str__(self) -> str:
        return f"{self.id} ({self.user_id})"
