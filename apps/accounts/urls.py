from django.urls import path

from apps.accounts import apis

urlpatterns = [
    path("auth/register", apis.RegisterApi.as_view(), name="auth-register"),
    path("auth/login", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/refresh", apis.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/me", apis.MeApi.as_view(), name="auth-me"),
    path("auth/password", apis.PasswordChangeApi.as_view(), name="auth-password"),
    path("auth/password-reset", apis.PasswordResetApi.as_view(), name="auth-password-reset"),
    path(
        "auth/password-reset/confirm",
        apis.PasswordResetConfirmApi.as_view(),
        name="auth-password-reset-confirm",
    ),
    path("api-keys", apis.ApiKeysApi.as_view(), name="api-keys"),
    path("api-keys/<str:api_key_id>", apis.ApiKeyApi.as_view(), name="api-key"),
]
