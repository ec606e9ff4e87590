"""What each role may do, granted to its group after every migrate (and after a test flush, which
empties the groups' permissions). One table, so a role's powers are read in one place."""

from __future__ import annotations

from apps.accounts.models import Roles

# role -> "app_label.codename" permissions its group carries
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    # Reviewers read the dashboard too: its queue size and decision times are their work.
    Roles.REVIEWER: (
        "payments.review_payment",
        "payments.view_payment",
        "wallets.view_wallet",
        "backoffice.view_dashboard",
    ),
    Roles.ADMIN: (
        "backoffice.view_dashboard",
        "payments.review_payment",
        "payments.view_payment",
        "wallets.view_wallet",
        "wallets.freeze_wallet",
        # outbound webhooks: read the events, endpoints and deliveries; retry a delivery
        "events.view_event",
        "events.view_webhookendpoint",
        "events.view_webhookdelivery",
        "events.view_deliveryattempt",
        "events.change_webhookdelivery",
    ),
    Roles.CUSTOMER: (),
}


def grant_role_permissions(sender=None, using="default", **kwargs) -> None:
    """post_migrate receiver (any app): grants every listed permission that exists by now."""
    from django.contrib.auth.models import Group, Permission

    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role)
        wanted = [name.split(".", 1) for name in names]
        permissions = [
            permission
            for permission in Permission.objects.using(using)
            .filter(codename__in=[c for _, c in wanted])
            .select_related("content_type")
            if [permission.content_type.app_label, permission.codename] in wanted
        ]
        group.permissions.add(*permissions)
