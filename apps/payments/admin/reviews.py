"""The review queue: payments and deposits held for review, decided the same way."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from apps.core.admin import ReadOnlyAdmin
from apps.core.admin_confirmation import Item, NoteForm, action_fields, note_confirmation
from apps.core.admin_review import DECISIONS
from apps.core.errors import ApplicationError
from apps.payments.admin.filters import HeldKindFilter, ReviewQueueFilter
from apps.payments.admin.payments import _money
from apps.payments.models import Payment, Review
from apps.payments.selectors import REVIEW_PERMISSION
from apps.payments.services import review_decide
from apps.wallets.models import Transaction


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    """The one review queue: every payment and deposit the risk rules hold, oldest first.

    Read-only like the payments; approving or denying goes through `review_decide` (the same
    checks as the API: the review permission, a note, never one's own money) after a
    confirmation page that requires a note.
    """

    list_display = ("held", "kind", "amount_display", "customer", "status", "reasons_display", "age")
    list_display_links = None
    list_filter = (ReviewQueueFilter, HeldKindFilter)
    list_select_related = ("payment__owner", "deposit__destination_wallet__user", "decided_by")
    search_fields = (
        "=payment__id",
        "=deposit__id",
        "=payment__owner__email",
        "=deposit__destination_wallet__user__email",
    )
    search_help_text = "Exact payment or deposit id, or customer email."
    ordering = ("opened_at", "id")
    list_per_page = 50
    actions = ["approve_selected", "deny_selected"]
    fields = ("payment", "deposit", "status", "reasons", "opened_at", "decided_by", "decided_at", "note")
    readonly_fields = fields

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVIEW_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_view_permission(request, obj) or self.has_review_permission(request)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        if request.GET.get(ReviewQueueFilter.parameter_name, Review.Status.OPEN) == Review.Status.OPEN:
            extra_context["title"] = "Review queue: payments and deposits held for review, oldest first"
        return super().changelist_view(request, extra_context)

    @staticmethod
    def _subject(review: Review) -> Payment | Transaction:
        subject = review.payment or review.deposit
        if subject is None:  # the database refuses a review of neither
            raise ValueError(f"review {review.pk} holds nothing")
        return subject

    @admin.display(description="held")
    def held(self, review: Review) -> str:
        if review.payment_id:
            url = reverse("admin:payments_payment_change", args=[quote(review.payment_id)])
        else:
            url = reverse("admin:wallets_transaction_change", args=[quote(review.deposit_id)])
        return format_html('<a href="{}">{}</a>', url, review.subject_id)

    @admin.display(description="kind")
    def kind(self, review: Review) -> str:
        return "payment" if review.payment_id else "deposit"

    @admin.display(description="amount")
    def amount_display(self, review: Review) -> str:
        subject = self._subject(review)
        return _money(subject.amount, subject.currency)

    @admin.display(description="customer")
    def customer(self, review: Review) -> str:
        subject = self._subject(review)
        if isinstance(subject, Payment):
            return subject.owner.email
        wallet = subject.destination_wallet
        return wallet.user.email if wallet is not None else "—"

    @admin.display(description="risk reasons")
    def reasons_display(self, review: Review) -> str:
        return ", ".join(review.reasons) or "—"

    @admin.display(description="age", ordering="opened_at")
    def age(self, review: Review) -> str:
        return timesince(review.opened_at)

    @admin.action(description="Approve selected (capture; a deposit is credited)", permissions=["review"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Review]):
        return self._decide_selected(request, queryset, "approve")

    @admin.action(description="Deny selected (void; nothing is charged or credited)", permissions=["review"])
    def deny_selected(self, request: HttpRequest, queryset: QuerySet[Review]):
        return self._decide_selected(request, queryset, "deny")

    def _label(self, review: Review) -> str:
        subject = self._subject(review)
        return (
            f"{self.kind(review)} {review.subject_id} — {_money(subject.amount, subject.currency)} "
            f"from {self.customer(review)} ({subject.status})"
        )

    def _decide_selected(self, request: HttpRequest, queryset: QuerySet[Review], decision: str):
        form = NoteForm(request.POST if "apply" in request.POST else None)
        reviews = list(queryset.select_related(*self.list_select_related).order_by("opened_at", "id"))
        if not form.is_valid():
            verb = DECISIONS[decision][0]
            return note_confirmation(
                request,
                model_admin=self,
                title=f"{verb} {len(reviews)} held item(s)",
                prompt=f"{verb} these? One note applies to each decision; it cannot be undone.",
                items=[Item(self._label(review)) for review in reviews],
                form=form,
                submit_label=f"{verb} {len(reviews)} item(s)",
                cancel_url=request.get_full_path(),
                hidden=action_fields(request, [str(review.pk) for review in reviews]),
                danger=decision == "deny",
            )
        for review in reviews:
            self._decide(request, review, decision, form.cleaned_data["note"])
        return None

    def _decide(self, request: HttpRequest, review: Review, decision: str, note: str) -> None:
        """One decision through the service; a refusal (already decided, own money …) becomes a message."""
        subject: Payment | Transaction
        try:
            if review.payment_id:
                subject = review_decide(
                    actor=request.user, payment_id=review.payment_id, decision=decision, note=note
                )
            else:
                subject = review_decide(
                    actor=request.user, deposit_id=str(review.deposit_id), decision=decision, note=note
                )
        except ApplicationError as exc:
            self.message_user(request, f"{review.subject_id}: {exc.message}", messages.ERROR)
            return
        self.message_user(
            request,
            f"{DECISIONS[decision][1]} {review.subject_id}: it is now {subject.get_status_display().lower()}.",
            messages.SUCCESS,
        )
