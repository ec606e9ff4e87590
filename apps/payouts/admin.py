"""Payouts in the back office: the list, a payout's page, the review of payouts held for review, and
a wallet's payouts on the wallet's page.

Like payments, every page is read-only (no add, change or delete: a payout is written only by its
services). A reviewer decides a held payout from its page (Approve / Deny) or in bulk from the list
filtered to "held, waiting" (the payouts' review queue, oldest first), always after the back office's
confirmation page that requires a note; the decision is `decide_payout_review` (the review
permission, a note, never one's own payout, one decision under the payout's row lock), exactly the
rules of a payment's or a deposit's review. The bank account token (encrypted at rest) is never shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from apps.core.admin import ReadOnlyAdmin, ReadOnlyMixin
from apps.core.admin_review import ReviewDecisionsMixin
from apps.core.money import Money
from apps.payments.selectors import REVIEW_PERMISSION
from apps.payouts.models import Payout
from apps.payouts.services import decide_payout_review
from apps.wallets.admin import WalletAdmin
from apps.wallets.models import Wallet

R = Payout.ReviewStatus
# what a decision does to a payout, said on the note page
EFFECTS = {
    "approve": "The payout is sent to the bank account.",
    "deny": "The payout is canceled and its amount put back into the wallet.",
}
SHOWN_FIELDS = (
    "id",
    "wallet_link",
    "owner",
    "amount_display",
    "status",
    "failure_code",
    "failure_message",
    "description",
    "destination_display",
    "gateway",
    "gateway_reference",
    "attempts",
    "next_attempt_at",
    "review_status",
    "review_reasons",
    "review_decided_by",
    "review_decided_at",
    "review_note",
    "created_at",
    "updated_at",
)


def _money(payout: Payout) -> str:
    return str(Money(payout.amount, payout.currency))


class HeldForReviewFilter(admin.SimpleListFilter):
    title = "held for review"
    parameter_name = "held"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (R.OPEN, "Held, waiting for a decision"),
            (R.APPROVED, "Approved"),
            (R.DENIED, "Denied"),
            (R.WITHDRAWN, "Withdrawn by its owner"),
            ("none", "Never held"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Payout]) -> QuerySet[Payout]:
        value = self.value()
        if value == "none":
            return queryset.filter(review_status=R.NONE)
        if value in R.values:
            return queryset.filter(review_status=value)
        return queryset


@admin.register(Payout)
class PayoutAdmin(ReviewDecisionsMixin, ReadOnlyAdmin):
    review_noun = "payout"
    review_select_related = ("wallet__user",)
    list_display = (
        "id",
        "amount_display",
        "owner",
        "wallet_link",
        "status",
        "held",
        "gateway",
        "failure_code",
        "age",
    )
    list_filter = (
        "status",
        "gateway",
        HeldForReviewFilter,
        "currency",
        ("created_at", admin.DateFieldListFilter),
    )
    list_select_related = ("wallet__user",)
    search_fields = ("=id", "=wallet__id", "=wallet__user__email", "=gateway_reference")
    search_help_text = "Exact payout id, wallet id, owner email or gateway reference."
    list_per_page = 50
    actions = ["approve_selected", "deny_selected"]
    fields = SHOWN_FIELDS
    readonly_fields = SHOWN_FIELDS

    # --- who may do what: staff who can view payouts or review; nobody writes (ReadOnlyAdmin)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVIEW_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or self.has_review_permission(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self.has_review_permission(request)

    @staticmethod
    def _is_queue(request: HttpRequest) -> bool:
        return request.GET.get(HeldForReviewFilter.parameter_name) == R.OPEN

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        # The queue is worked oldest first (longest wait); any other list reads newest first.
        return ("created_at", "id") if self._is_queue(request) else ("-created_at", "-id")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        if self._is_queue(request):
            extra_context["title"] = "Review queue: payouts held for review, oldest first"
        return super().changelist_view(request, extra_context)

    # --- columns and fields ---------------------------------------------------------------------

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, payout: Payout) -> str:
        return _money(payout)

    @admin.display(description="owner", ordering="wallet__user__email")
    def owner(self, payout: Payout) -> str:
        return str(payout.wallet.user.email)

    @admin.display(description="wallet", ordering="wallet")
    def wallet_link(self, payout: Payout) -> str:
        url = reverse("admin:wallets_wallet_change", args=[quote(payout.wallet_id)])
        return format_html('<a href="{}">{}</a>', url, payout.wallet_id)

    @admin.display(description="held for review", ordering="review_status")
    def held(self, payout: Payout) -> str:
        return payout.get_review_status_display() if payout.review_status else "—"

    @admin.display(description="destination")
    def destination_display(self, payout: Payout) -> str:
        return (
            f"{payout.destination_type} •••• {payout.destination_last4}"
            if payout.destination_last4
            else payout.destination_type
        )

    @admin.display(description="age", ordering="created_at")
    def age(self, payout: Payout) -> str:
        return timesince(payout.created_at)

    # --- the payout's page: Approve / Deny while it is held --------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        payout = self.get_object(request, unquote(object_id))
        if payout is not None:
            extra_context = {
                "payout_amount": _money(payout),
                **self.review_context(request, payout),
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- bulk decisions from the queue ----------------------------------------------------------

    @admin.action(description="Approve selected payouts held for review (send them)", permissions=["review"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Payout]) -> HttpResponse | None:
        return self.decide_selected(request, queryset, "approve")

    @admin.action(description="Deny selected payouts held for review (money back)", permissions=["review"])
    def deny_selected(self, request: HttpRequest, queryset: QuerySet[Payout]) -> HttpResponse | None:
        return self.decide_selected(request, queryset, "deny")

    # --- the review, for ReviewDecisionsMixin ------------------------------------------------------

    def review_decision(self, request: HttpRequest, pk: str, decision: str, note: str) -> Payout:
        return decide_payout_review(
            payout=pk, approve=decision == "approve", note=note, reviewer=request.user
        )

    def review_effect(self, obj: Payout, decision: str) -> str:
        return EFFECTS[decision]

    def review_waiting(self, obj: Payout) -> bool:
        return obj.held_for_review

    def review_label(self, payout: Payout) -> str:
        return f"{payout.pk} — {_money(payout)} from {payout.wallet.user.email} ({payout.status})"


class WalletPayoutsInline(ReadOnlyMixin, admin.TabularInline):
    """A wallet's payouts, newest first, each linking to its page."""

    model = Payout
    fk_name = "wallet"
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created_at", "-id")
    fields = ("id", "amount_display", "status", "failure_code", "held", "created_at")
    readonly_fields = fields
    verbose_name_plural = "payouts"

    @admin.display(description="amount")
    def amount_display(self, payout: Payout) -> str:
        return _money(payout)

    @admin.display(description="held for review")
    def held(self, payout: Payout) -> str:
        return payout.get_review_status_display() if payout.review_status else "—"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or request.user.has_perm(REVIEW_PERMISSION)


# The wallets app sits below payouts and cannot know them: its WalletAdmin is extended here with the
# wallet's payouts (the way one extends django.contrib.auth's UserAdmin).
admin.site.unregister(Wallet)


@admin.register(Wallet)
class WalletWithPayoutsAdmin(WalletAdmin):
    inlines = [*WalletAdmin.inlines, WalletPayoutsInline]
