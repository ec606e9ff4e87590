from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and access"

    def ready(self) -> None:
        from apps.accounts.models import User
        from apps.accounts.roles import grant_role_permissions
        from apps.accounts.signals import end_sessions_on_new_password

        # For every app: a permission exists only once its own app has migrated.
        post_migrate.connect(grant_role_permissions, dispatch_uid="accounts-role-permissions")
        post_save.connect(end_sessions_on_new_password, sender=User, dispatch_uid="accounts-new-password")
