"""Plumbing in the back office: dead letters (with replay) and the outbox, both read-only; and the
one read-only block every app's admin uses (`ReadOnlyAdmin`, or `ReadOnlyMixin` for an inline or
another base)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.dead_letters import can_replay, dead_letter_replay
from apps.core.models import DeadLetter, OutboxEvent


class ReadOnlyMixin:
    """Refuses add, change and delete: rows are shown, never edited from the admin. First among the
    bases of a ModelAdmin or an inline (`class X(ReadOnlyMixin, admin.TabularInline)`)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """A ModelAdmin whose rows are read-only (see ReadOnlyMixin)."""


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    """Work that gave up after its last retry. Replay runs the kind's registered replayer once."""

    list_display = ("id", "kind", "reference", "reason", "attempts", "created_at", "replay_state")
    list_filter = (
        "kind",
        ("replayed_at", admin.EmptyFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("=reference",)
    search_help_text = "Exact reference (payment, refund or event id)."
    ordering = ("-created_at", "-id")
    fields = (
        "id",
        "kind",
        "reference",
        "reason",
        "attempts",
        "payload",
        "created_at",
        "replayed_at",
        "replay_error",
    )
    readonly_fields = fields
    actions = ["replay"]

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # Replaying re-runs money work: the same bar as editing the row, which only admins pass.
        return request.user.has_perm("core.change_deadletter")

    @admin.display(description="replay")
    def replay_state(self, letter: DeadLetter) -> str:
        if letter.replayed_at is None:
            return "waiting"
        return f"failed: {letter.replay_error}" if letter.replay_error else "replayed"

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        replayed, failed, skipped = [], [], []
        for letter in queryset.order_by("created_at", "id"):
            if not can_replay(letter):
                skipped.append(letter)
            elif dead_letter_replay(dead_letter_id=letter.pk):
                replayed.append(letter)
            else:
                failed.append(letter)
        if replayed:
            self.message_user(request, f"Replayed {len(replayed)} dead letter(s).", messages.SUCCESS)
        for letter in failed:
            letter.refresh_from_db(fields=["replay_error"])
            self.message_user(
                request,
                f"Dead letter {letter.pk} ({letter.kind} {letter.reference}) failed again: "
                f"{letter.replay_error or 'already claimed by another replay'}",
                messages.ERROR,
            )
        if skipped:
            self.message_user(
                request,
                f"Skipped {len(skipped)} dead letter(s) already replayed or of a kind with no replayer: "
                + ", ".join(str(letter.pk) for letter in skipped),
                messages.WARNING,
            )


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    """What the platform announced, and whether every consumer has run (undelivered first)."""

    list_display = ("id", "event_type", "aggregate_type", "aggregate_id", "created_at", "delivered_at")
    list_filter = ("event_type", ("delivered_at", admin.EmptyFieldListFilter))
    search_fields = ("=id", "=aggregate_id", "=correlation_id")
    search_help_text = "Exact event id, aggregate id or correlation id."
    ordering = ("-created_at",)
    show_full_result_count = False
    fields = (
        "id",
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "payload",
        "correlation_id",
        "created_at",
        "published_at",
        "publish_attempts",
        "delivered_at",
    )
    readonly_fields = fields
