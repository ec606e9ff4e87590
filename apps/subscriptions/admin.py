"""Subscriptions in the back office: read-only, with the next billing date and every payment made."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from apps.core.admin import ReadOnlyAdmin
from apps.core.money import Money
from apps.subscriptions.models import Subscription
from apps.subscriptions.selectors import subscription_payments

PAYMENTS_SHOWN = 50


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    # Changes go through the API's services (audit, events); the admin only shows.
    list_display = (
        "id",
        "owner",
        "plan_id",
        "price",
        "status",
        "next_billing_date",
        "current_period_end",
        "cancel_at_period_end",
        "created_at",
    )
    list_filter = ("status", "billing_cycle", "cancel_at_period_end", "currency")
    search_fields = ("=id", "owner__email", "plan_id")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    fieldsets = (
        (None, {"fields": ("id", "owner", "plan_id", "price", "status", "payment_method_type", "metadata")}),
        (
            "Billing",
            {
                "fields": (
                    "current_period_start",
                    "current_period_end",
                    "next_billing_date",
                    "trial_end_date",
                    "dunning_attempt",
                    "cancel_at_period_end",
                    "canceled_at",
                    "pending_update",
                    "billing_anchor",
                    "billing_claimed_until",
                )
            },
        ),
        ("Payments", {"fields": ("payments",)}),
    )
    readonly_fields = (
        "id",
        "owner",
        "plan_id",
        "price",
        "status",
        "payment_method_type",
        "metadata",
        "current_period_start",
        "current_period_end",
        "next_billing_date",
        "trial_end_date",
        "dunning_attempt",
        "cancel_at_period_end",
        "canceled_at",
        "pending_update",
        "billing_anchor",
        "billing_claimed_until",
        "payments",
    )

    @admin.display(description="price", ordering="amount")
    def price(self, subscription: Subscription) -> str:
        return subscription.price

    @admin.display(description="next billing date", ordering="due_at")
    def next_billing_date(self, subscription: Subscription):
        return subscription.next_billing_date

    @admin.display(description="payment method")
    def payment_method_type(self, subscription: Subscription) -> str:
        # The token itself stays out of the back office.
        return "wallet" if subscription.payment_method.startswith("wallet:") else "card token"

    @admin.display(description="pending update (next period)")
    def pending_update(self, subscription: Subscription) -> str:
        parts = []
        if subscription.pending_amount is not None:
            parts.append(f"amount {Money(subscription.pending_amount, subscription.currency)}")
        if subscription.pending_billing_cycle:
            parts.append(f"cycle {subscription.pending_billing_cycle}")
        if subscription.pending_plan_id:
            parts.append(f"plan {subscription.pending_plan_id}")
        if subscription.pending_payment_method:
            parts.append("new payment method")
        return ", ".join(parts) or "-"

    @admin.display(description="payments (newest first)")
    def payments(self, subscription: Subscription):
        payments = list(subscription_payments(subscription=subscription)[:PAYMENTS_SHOWN])
        if not payments:
            return "No payments yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _payment_link(p.pk),
                    p.billing_period,
                    str(Money(p.amount, p.currency)),
                    p.status,
                    p.failure_code or "",
                    p.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                )
                for p in payments
            ),
        )
        return format_html(
            "<table><thead><tr><th>payment</th><th>billing period</th><th>amount</th><th>status</th>"
            "<th>failure</th><th>created</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )


def _payment_link(payment_id: str):
    try:
        url = reverse("admin:payments_payment_change", args=[quote(payment_id)])
    except NoReverseMatch:
        return payment_id
    return format_html('<a href="{}">{}</a>', url, payment_id)
