from django.apps import AppConfig
from django.db.models.signals import post_migrate


def grant_review_permission(sender, using="default", **kwargs) -> None:
    """Reviewers and admins may decide reviews. Run after every migrate (and after a test flush,
    which empties the groups' permissions), so the roles always carry it."""
    from django.contrib.auth.models import Group, Permission

    from apps.accounts.models import Roles

    permission = (
        Permission.objects.using(using)
        .filter(content_type__app_label="payments", codename="review_payment")
        .first()
    )
    if permission is None:
        return
    for role in (Roles.REVIEWER, Roles.ADMIN):
        group, _ = Group.objects.using(using).get_or_create(name=role)
        group.permissions.add(permission)


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        # After auth's own post_migrate handler, which creates the permission rows.
        post_migrate.connect(grant_review_permission, sender=self, dispatch_uid="payments-review-permission")
