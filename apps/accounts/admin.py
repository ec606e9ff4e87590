from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError

from apps.accounts.errors import InvalidCredentials, TooManyFailedLogins
from apps.accounts.models import ApiKey, AuthSession, User
from apps.accounts.services import admin_login, api_key_revoke
from apps.core.admin import ReadOnlyAdmin


class StaffLoginForm(AdminAuthenticationForm):
    """The admin's login form, checked by the API login's service: the same per-account and
    per-address limits, and an audit row for every success and failure."""

    def clean(self):
        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if email is None or not password:
            return self.cleaned_data
        try:
            user = admin_login(email=email, password=password)
        except TooManyFailedLogins as exc:
            raise ValidationError(exc.message, code="too_many_failed_logins") from exc
        except InvalidCredentials as exc:
            raise self.get_invalid_login_error() from exc
        # auth.login() reads the backend that authenticated the user; permissions stay ModelBackend's.
        user.backend = "django.contrib.auth.backends.ModelBackend"  # type: ignore[attr-defined]
        self.user_cache = user
        return self.cleaned_data


admin.site.login_form = StaffLoginForm


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class UserChangeFormForEmail(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeFormForEmail
    add_form = UserCreationForm
    list_display = ("email", "full_name", "role_names", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "full_name", "id")
    ordering = ("-date_joined",)
    readonly_fields = ("id", "date_joined", "last_login")
    filter_horizontal = ("groups", "user_permissions")
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "usable_password", "password1", "password2"),
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="roles")
    def role_names(self, user: User) -> str:
        return ", ".join(sorted(group.name for group in user.groups.all()))


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made by their owner through the API (the only place the secret is ever shown)."""

    list_display = ("id", "name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("id", "name", "prefix", "user__email")
    list_select_related = ("user",)
    fields = ("id", "name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Revoked, never deleted: the audit trail points at the row.
        return False

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key, actor=request.user)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)


@admin.register(AuthSession)
class AuthSessionAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "created_at", "refreshed_at", "revoked_at", "revoked_reason", "ip")
    list_filter = ("revoked_reason", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("id", "user__email", "ip")
    list_select_related = ("user",)
    fields = (
        "id",
        "user",
        "created_at",
        "refreshed_at",
        "revoked_at",
        "revoked_reason",
        "ip",
        "user_agent",
    )
    readonly_fields = fields
