from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and access"

    def ready(self) -> None:
        from apps.accounts.roles import grant_role_permissions

        # For every app: a permission exists only once its own app has migrated.
        post_migrate.connect(grant_role_permissions, dispatch_uid="accounts-role-permissions")
