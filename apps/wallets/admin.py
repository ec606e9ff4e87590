"""Wallets in the back office: read-only rows; staff freeze or unfreeze through the services.

Freezing is offered on the list (bulk action) and on a wallet's page; both ask for a note first on
the back office's shared confirmation page, then call `wallet_freeze` / `wallet_unfreeze` (row
lock, audit record with the note, event, cache invalidation).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from apps.core.admin import ReadOnlyMixin
from apps.core.admin_confirmation import Item, NoteForm, action_fields, note_confirmation
from apps.core.errors import ApplicationError
from apps.core.money import Money
from apps.wallets.models import FREEZE_PERMISSION, Transaction, Wallet
from apps.wallets.services import wallet_freeze, wallet_unfreeze

SERVICES = {"freeze": wallet_freeze, "unfreeze": wallet_unfreeze}
PROMPTS = {
    "freeze": "Freeze these wallets? A frozen wallet neither sends nor receives money. Say why:",
    "unfreeze": "Unfreeze these wallets? They can send and receive money again. Say why:",
}


# A pending deposit's card token (encrypted at rest) is kept for the worker's retries: never shown.
TRANSACTION_HIDDEN = ("payment_method_token",)


def _wallet_label(wallet: Wallet) -> str:
    return f"{wallet.pk} — {wallet.user} ({Money(wallet.balance, wallet.currency)}, {wallet.status})"


@admin.register(Wallet)
class WalletAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "user", "currency", "balance_display", "status", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("=id", "user__email")
    list_select_related = ("user",)
    fields = ("id", "user", "currency", "balance_display", "status", "ledger_account", "created_at")
    readonly_fields = fields
    actions = ["freeze", "unfreeze"]

    @admin.display(description="balance", ordering="balance")
    def balance_display(self, wallet: Wallet) -> str:
        return str(Money(wallet.balance, wallet.currency))

    def has_freeze_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(FREEZE_PERMISSION)

    @admin.action(description="Freeze selected wallets (no money in or out)", permissions=["freeze"])
    def freeze(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> HttpResponse | None:
        return self._set_status_selected(request, queryset, "freeze")

    @admin.action(description="Unfreeze selected wallets", permissions=["freeze"])
    def unfreeze(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> HttpResponse | None:
        return self._set_status_selected(request, queryset, "unfreeze")

    def _set_status_selected(
        self, request: HttpRequest, queryset: QuerySet[Wallet], verb: str
    ) -> HttpResponse | None:
        form = NoteForm(request.POST if "apply" in request.POST else None)
        wallets = list(queryset.select_related("user").order_by("pk"))
        if not form.is_valid():
            return note_confirmation(
                request,
                model_admin=self,
                title=f"{verb.capitalize()} {len(wallets)} wallet(s)",
                prompt=PROMPTS[verb],
                items=[Item(_wallet_label(w), self._change_url(w.pk)) for w in wallets],
                form=form,
                submit_label=f"{verb.capitalize()} {len(wallets)} wallet(s)",
                cancel_url=request.get_full_path(),
                hidden=action_fields(request, [w.pk for w in wallets]),
                danger=verb == "freeze",
            )
        done = sum(self._set_status(request, w.pk, verb, form.cleaned_data["note"]) for w in wallets)
        self.message_user(request, f"{done} wallet(s) {verb}d.", messages.SUCCESS)
        return None

    def _set_status(self, request: HttpRequest, wallet_id: str, verb: str, note: str) -> bool:
        try:
            SERVICES[verb](actor=request.user, wallet_id=wallet_id, note=note)
        except ApplicationError as exc:
            self.message_user(request, f"{wallet_id}: {exc.message}", messages.ERROR)
            return False
        return True

    # --- one wallet's page: a Freeze / Unfreeze button -----------------------------------------

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/status/<str:verb>/",
                self.admin_site.admin_view(self.status_view),
                name="wallets_wallet_status",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        wallet = self.get_object(request, unquote(object_id))
        if wallet is not None and self.has_freeze_permission(request):
            verb = "unfreeze" if wallet.status == Wallet.Status.FROZEN else "freeze"
            extra_context = {
                "status_verb": verb,
                "status_url": reverse("admin:wallets_wallet_status", args=[quote(wallet.pk), verb]),
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def status_view(self, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
        if verb not in SERVICES:
            raise Http404("Unknown action")
        if not self.has_freeze_permission(request):
            raise PermissionDenied
        wallet = self.get_object(request, unquote(object_id))
        if wallet is None:
            raise Http404("No such wallet")
        change_url = self._change_url(wallet.pk)
        form = NoteForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            if self._set_status(request, wallet.pk, verb, form.cleaned_data["note"]):
                self.message_user(request, f"{wallet.pk} {verb}d.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        return note_confirmation(
            request,
            model_admin=self,
            title=f"{verb.capitalize()} wallet {wallet.pk}",
            prompt=PROMPTS[verb],
            items=[Item(_wallet_label(wallet), change_url)],
            form=form,
            submit_label=f"{verb.capitalize()} wallet",
            cancel_url=change_url,
            danger=verb == "freeze",
        )

    @staticmethod
    def _change_url(wallet_id: str) -> str:
        return reverse("admin:wallets_wallet_change", args=[quote(wallet_id)])


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "type",
        "status",
        "amount_display",
        "source_wallet",
        "destination_wallet",
        "created_at",
    )
    list_filter = ("type", "status", "currency")
    search_fields = ("=id", "=source_wallet__id", "=destination_wallet__id", "=gateway_reference")
    date_hierarchy = "created_at"
    exclude = TRANSACTION_HIDDEN
    readonly_fields = [
        field.name for field in Transaction._meta.fields if field.name not in TRANSACTION_HIDDEN
    ]

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, txn: Transaction) -> str:
        return str(Money(txn.amount, txn.currency))
