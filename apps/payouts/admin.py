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

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from apps.core.admin import ReadOnlyAdmin, ReadOnlyMixin
from apps.core.admin_confirmation import Item, NoteForm, action_fields, note_confirmation
from apps.core.errors import ApplicationError
from apps.core.money import Money
from apps.payments.selectors import REVIEW_PERMISSION
from apps.payouts.models import Payout
from apps.payouts.services import decide_payout_review
from apps.wallets.admin import WalletAdmin
from apps.wallets.models import Wallet

R = Payout.ReviewStatus
# decision -> (verb, past tense, what it does)
DECISIONS = {
    "approve": ("Approve", "Approved", "The payout is sent to the bank account."),
    "deny": ("Deny", "Denied", "The payout is canceled and its amount put back into the wallet."),
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
class PayoutAdmin(ReadOnlyAdmin):
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
                "can_decide": payout.held_for_review and self.has_review_permission(request),
                "decide_urls": {
                    decision: reverse("admin:payouts_payout_decide", args=[quote(payout.pk), decision])
                    for decision in DECISIONS
                },
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/decide/<str:decision>/",
                self.admin_site.admin_view(self.decide_view),
                name="payouts_payout_decide",
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request: HttpRequest, object_id: str, decision: str) -> HttpResponse:
        """Approve or deny one held payout: the confirmation page with a note, then the service."""
        if decision not in DECISIONS:
            raise Http404("Unknown decision")
        if not self.has_review_permission(request):
            raise PermissionDenied
        payout = self.get_object(request, unquote(object_id))
        if payout is None:
            raise Http404("No such payout")
        change_url = reverse("admin:payouts_payout_change", args=[quote(payout.pk)])
        if request.method != "POST" and not payout.held_for_review:
            self.message_user(request, f"{payout.pk} is not waiting for a decision.", messages.WARNING)
            return HttpResponseRedirect(change_url)
        form = NoteForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            self._decide(request, payout.pk, decision, form.cleaned_data["note"])
            return HttpResponseRedirect(change_url)
        verb, _, effect = DECISIONS[decision]
        return note_confirmation(
            request,
            model_admin=self,
            title=f"{verb} payout {payout.pk}",
            prompt=f"{verb} this payout? {effect} The decision cannot be undone.",
            items=[Item(self._label(payout), change_url)],
            form=form,
            submit_label=f"{verb} payout",
            cancel_url=change_url,
            danger=decision == "deny",
        )

    # --- bulk decisions from the queue ----------------------------------------------------------

    @admin.action(description="Approve selected payouts held for review (send them)", permissions=["review"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Payout]) -> HttpResponse | None:
        return self._decide_selected(request, queryset, "approve")

    @admin.action(description="Deny selected payouts held for review (money back)", permissions=["review"])
    def deny_selected(self, request: HttpRequest, queryset: QuerySet[Payout]) -> HttpResponse | None:
        return self._decide_selected(request, queryset, "deny")

    def _decide_selected(
        self, request: HttpRequest, queryset: QuerySet[Payout], decision: str
    ) -> HttpResponse | None:
        form = NoteForm(request.POST if "apply" in request.POST else None)
        payouts = list(queryset.select_related("wallet__user").order_by("created_at", "id"))
        if not form.is_valid():
            verb = DECISIONS[decision][0]
            return note_confirmation(
                request,
                model_admin=self,
                title=f"{verb} {len(payouts)} payout(s)",
                prompt=f"{verb} these payouts? One note applies to each decision; it cannot be undone.",
                items=[
                    Item(self._label(p), reverse("admin:payouts_payout_change", args=[quote(p.pk)]))
                    for p in payouts
                ],
                form=form,
                submit_label=f"{verb} {len(payouts)} payout(s)",
                cancel_url=request.get_full_path(),
                hidden=action_fields(request, [p.pk for p in payouts]),
                danger=decision == "deny",
            )
        for payout in payouts:
            self._decide(request, payout.pk, decision, form.cleaned_data["note"])
        return None

    def _decide(self, request: HttpRequest, payout_id: str, decision: str, note: str) -> None:
        """One decision through the service; a refusal (already decided, own payout …) becomes a message."""
        try:
            payout = decide_payout_review(
                payout=payout_id, approve=decision == "approve", note=note, reviewer=request.user
            )
        except ApplicationError as exc:
            self.message_user(request, f"{payout_id}: {exc.message}", messages.ERROR)
            return
        self.message_user(
            request,
            f"{DECISIONS[decision][1]} {payout_id}: the payout is now {payout.get_status_display().lower()}.",
            messages.SUCCESS,
        )

    @staticmethod
    def _label(payout: Payout) -> str:
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
