from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and access"

    def ready(self) -> None:
        from django.contrib.auth.models import Group, Permission

        from apps.accounts.models import ApiKey, User
        from apps.accounts.roles import grant_role_permissions
        from apps.accounts.signals import (
            end_sessions_on_new_password,
            forget_cached_api_key,
            forget_cached_memberships,
            forget_cached_permissions,
            forget_cached_user,
        )

        # For every app: a permission exists only once its own app has migrated.
        post_migrate.connect(grant_role_permissions, dispatch_uid="accounts-role-permissions")
        post_save.connect(end_sessions_on_new_password, sender=User, dispatch_uid="accounts-new-password")
        # What authentication caches of a user (apps.accounts.session_cache) is forgotten on commit.
        for name, signal in (("save", post_save), ("delete", post_delete)):
            signal.connect(forget_cached_user, sender=User, dispatch_uid=f"accounts-cached-user-{name}")
            signal.connect(
                forget_cached_api_key, sender=ApiKey, dispatch_uid=f"accounts-cached-api-key-{name}"
            )
            for model in (Group, Permission):
                signal.connect(
                    forget_cached_permissions,
                    sender=model,
                    dispatch_uid=f"accounts-cached-{model.__name__}-{name}",
                )
        for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
            m2m_changed.connect(
                forget_cached_memberships, sender=through, dispatch_uid=f"accounts-cached-{through.__name__}"
            )
