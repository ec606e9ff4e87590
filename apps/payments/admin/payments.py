"""Payments and refunds in the back office: a payment's whole story, approve and deny from its page."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets, quote, unquote
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from apps.core.admin import ReadOnlyAdmin
from apps.core.admin_review import ReviewDecisionsMixin
from apps.core.money import Money
from apps.payments.admin.filters import QUEUE, QueueStatusFilter, ReviewStatusFilter
from apps.payments.models import Payment, Refund, Review
from apps.payments.selectors import REVIEW_PERMISSION, payment_story
from apps.payments.services import review_decide

# what a decision does, to a card payment and to a wallet payment, said on the note page
EFFECTS = {
    "approve": (
        "The authorized amount is captured at the gateway.",
        "The funds held in the customer's wallet are taken.",
    ),
    "deny": (
        "The authorization is voided at the gateway; nothing is charged.",
        "The funds held in the customer's wallet are released back to it.",
    ),
}


def _review_of(payment: Payment) -> Review | None:
    try:
        return payment.review
    except Review.DoesNotExist:
        return None


def _money(amount: int, currency: str) -> str:
    return str(Money(amount, currency))


@admin.register(Payment)
class PaymentAdmin(ReviewDecisionsMixin, ReadOnlyAdmin):
    review_noun = "payment"
    review_select_related = ("owner",)
    list_display = (
        "id",
        "amount_display",
        "customer",
        "status",
        "review_status",
        "risk",
        "age",
    )
    list_display_links = ("id",)
    list_filter = (
        QueueStatusFilter,
        ReviewStatusFilter,
        "currency",
        ("created_at", admin.DateFieldListFilter),
    )
    list_select_related = ("owner", "review")
    search_fields = ("=id", "=owner__email", "=customer_id", "=gateway_reference")
    search_help_text = "Exact payment id, customer email, customer id or gateway reference."
    list_per_page = 50
    actions = ["approve_selected", "deny_selected"]
    fieldsets = (
        (
            "Payment",
            {
                "fields": (
                    "id",
                    "status",
                    "amount_display",
                    "captured_display",
                    "refunded_display",
                    "capture_method",
                    "method",
                    "description",
                    "customer",
                    "customer_id",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (
            "Gateway",
            {
                "fields": (
                    "gateway",
                    "gateway_reference",
                    "failure_code",
                    "failure_message",
                    "pending_operation",
                    "attempts",
                    "next_attempt_at",
                )
            },
        ),
        ("More", {"classes": ("collapse",), "fields": ("metadata", "subscription_id", "billing_period")}),
    )
    # Everything shown is read-only (the token and receipt email, encrypted at rest, are not shown).
    readonly_fields = tuple(flatten_fieldsets(fieldsets))

    # --- who may do what: read for staff who can view or review; write for nobody (ReadOnlyAdmin)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVIEW_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_view_permission(request, obj) or self.has_review_permission(request)

    # --- the queue ----------------------------------------------------------------------------

    @staticmethod
    def _is_queue(request: HttpRequest) -> bool:
        return request.GET.get(QueueStatusFilter.parameter_name, QUEUE) == QUEUE

    def get_ordering(self, request: HttpRequest):
        # The queue is worked oldest first (longest wait); any other list reads newest first.
        return ("created_at", "id") if self._is_queue(request) else ("-created_at", "-id")

    def changelist_view(self, request: HttpRequest, extra_context=None):
        # The queue needs its width more than the app sidebar (a click away on the left edge).
        extra_context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        if self._is_queue(request):
            extra_context["title"] = "Review queue: payments held for review, oldest first"
        return super().changelist_view(request, extra_context)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, payment: Payment) -> str:
        return _money(payment.amount, payment.currency)

    @admin.display(description="captured")
    def captured_display(self, payment: Payment) -> str:
        return _money(payment.amount_captured, payment.currency)

    @admin.display(description="refunded")
    def refunded_display(self, payment: Payment) -> str:
        return _money(payment.amount_refunded, payment.currency)

    @admin.display(description="customer", ordering="owner__email")
    def customer(self, payment: Payment) -> str:
        return payment.owner.email

    @admin.display(description="review")
    def review_status(self, payment: Payment) -> str:
        review = _review_of(payment)
        return review.get_status_display() if review else "—"

    @admin.display(description="risk reasons")
    def risk(self, payment: Payment) -> str:
        review = _review_of(payment)
        return ", ".join((review.reasons if review else None) or payment.risk_reasons) or "—"

    @admin.display(description="age", ordering="created_at")
    def age(self, payment: Payment) -> str:
        return timesince(payment.created_at)

    @admin.display(description="payment method")
    def method(self, payment: Payment) -> str:
        if payment.method_type == Payment.MethodType.WALLET:
            return f"wallet {payment.wallet_id}"
        if payment.card_last4:
            return f"{payment.card_brand or 'card'} •••• {payment.card_last4}"
        return "card"

    # --- the payment page ---------------------------------------------------------------------

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        payment = self.get_object(request, unquote(object_id))
        if payment is not None and self.has_view_permission(request, payment):
            story = payment_story(payment=payment)
            extra_context = {
                "story": story,
                "payment_amount": _money(payment.amount, payment.currency),
                # (object, its money as text) pairs: templates can't call Money themselves.
                "rows": {
                    "recent": [(p, _money(p.amount, p.currency)) for p in story.recent_payments],
                    "wallets": [(w, _money(w.balance, w.currency)) for w in story.wallets],
                    "refunds": [(r, _money(r.amount, payment.currency)) for r in story.refunds],
                },
                **self.review_context(request, payment),
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- bulk decisions from the queue --------------------------------------------------------

    @admin.action(description="Approve selected payments (capture)", permissions=["review"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Payment]):
        return self.decide_selected(request, queryset, "approve")

    @admin.action(description="Deny selected payments (void)", permissions=["review"])
    def deny_selected(self, request: HttpRequest, queryset: QuerySet[Payment]):
        return self.decide_selected(request, queryset, "deny")

    # --- the review, for ReviewDecisionsMixin ------------------------------------------------------

    def review_decision(self, request: HttpRequest, pk: str, decision: str, note: str) -> Payment:
        return review_decide(actor=request.user, payment_id=pk, decision=decision, note=note)

    def review_effect(self, obj: Payment, decision: str) -> str:
        card, wallet = EFFECTS[decision]
        return wallet if obj.method_type == Payment.MethodType.WALLET else card

    def review_waiting(self, obj: Payment) -> bool:
        review = _review_of(obj)
        return (
            review is not None
            and review.status == Review.Status.OPEN
            and obj.status == Payment.Status.IN_REVIEW
        )

    def review_label(self, payment: Payment) -> str:
        return f"{payment.pk} — {_money(payment.amount, payment.currency)} from {payment.owner.email} ({payment.status})"


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "payment_link", "amount_display", "status", "failure_code", "created_at")
    list_filter = ("status", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("payment",)
    search_fields = ("=id", "=payment__id")
    fields = (
        "id",
        "payment_link",
        "amount_display",
        "status",
        "reason",
        "gateway_reference",
        "failure_code",
        "attempts",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        # Reviewers follow a payment's refunds from its page.
        return super().has_view_permission(request, obj) or request.user.has_perm(REVIEW_PERMISSION)

    @admin.display(description="payment", ordering="payment")
    def payment_link(self, refund: Refund) -> str:
        url = reverse("admin:payments_payment_change", args=[quote(refund.payment_id)])
        return format_html('<a href="{}">{}</a>', url, refund.payment_id)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, refund: Refund) -> str:
        return _money(refund.amount, refund.payment.currency)
