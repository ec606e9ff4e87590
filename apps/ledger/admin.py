"""The journal in the back office: readable, never editable (entries are append-only)."""

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin, ReadOnlyMixin
from apps.ledger.models import JournalEntry, LedgerAccount, Posting
from apps.ledger.selectors import ledger_account_balance


class PostingInline(ReadOnlyMixin, admin.TabularInline):
    model = Posting
    fields = ("account", "amount", "currency")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "code", "currency", "created_at")
    list_filter = ("kind", "currency")
    search_fields = ("id", "code")
    readonly_fields = ("id", "kind", "code", "currency", "created_at", "balance")

    @admin.display(description="Balance (sum of postings, minor units)")
    def balance(self, obj: LedgerAccount) -> int:
        return ledger_account_balance(account=obj)


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "memo", "created_at", "correlation_id")
    list_filter = ("kind",)
    search_fields = ("id", "memo", "correlation_id")
    date_hierarchy = "created_at"
    inlines = [PostingInline]
