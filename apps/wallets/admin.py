"""Wallets in the back office: read-only rows; staff freeze or unfreeze through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from apps.core.errors import ApplicationError
from apps.wallets.models import Transaction, Wallet
from apps.wallets.services import wallet_freeze, wallet_unfreeze


class NoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=500, help_text="Why (audited)."
    )


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _set_status(modeladmin, request: HttpRequest, queryset: QuerySet[Wallet], *, service, verb: str):
    """Asks for a note first (the audit trail must say why), then calls the service per wallet."""
    form = NoteForm(request.POST if "apply" in request.POST else None)
    if not form.is_valid():
        return TemplateResponse(
            request,
            "admin/wallets/wallet/status_note.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"{verb.capitalize()} wallets",
                "verb": verb,
                "wallets": queryset,
                "form": form,
                "action": request.POST.get("action"),
                "opts": modeladmin.model._meta,
            },
        )
    done = 0
    for wallet_id in queryset.values_list("pk", flat=True):
        try:
            service(actor=request.user, wallet_id=wallet_id, note=form.cleaned_data["note"])
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{wallet_id}: {exc.message}", messages.ERROR)
    modeladmin.message_user(request, f"{done} wallet(s) {verb}d.", messages.SUCCESS)
    return None


@admin.register(Wallet)
class WalletAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "user", "currency", "balance", "status", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("id", "user__email")
    list_select_related = ("user",)
    readonly_fields = ("id", "user", "currency", "balance", "status", "ledger_account", "created_at")
    actions = ["freeze", "unfreeze"]

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Freeze selected wallets (no money in or out)", permissions=["view"])
    def freeze(self, request, queryset):
        return _set_status(self, request, queryset, service=wallet_freeze, verb="freeze")

    @admin.action(description="Unfreeze selected wallets", permissions=["view"])
    def unfreeze(self, request, queryset):
        return _set_status(self, request, queryset, service=wallet_unfreeze, verb="unfreeze")


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "type",
        "status",
        "amount",
        "currency",
        "source_wallet",
        "destination_wallet",
        "created_at",
    )
    list_filter = ("type", "status", "currency")
    search_fields = ("id", "source_wallet__id", "destination_wallet__id", "gateway_reference")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Transaction._meta.fields]

    def has_change_permission(self, request, obj=None):
        return False
