"""The back office's list filters: the review queue shown by default, with "All" a choice of its own."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import models

from apps.payments.models import Payment, Review

QUEUE = Payment.Status.IN_REVIEW


class _QueueFilter(admin.SimpleListFilter):
    """A status filter showing the review queue (`default`) unless asked otherwise.

    "All" is a choice of its own (`?status=all`): with no parameter the list is the queue, so
    clearing the filter must be something the reviewer can click.
    """

    title = "status"
    parameter_name = "status"
    ALL = "all"
    all_title = "All"
    statuses: type[models.TextChoices]
    default: str

    def lookups(self, request, model_admin):
        return [(self.ALL, self.all_title), *self.statuses.choices]

    def current(self) -> str:
        return self.value() or self.default

    def queryset(self, request, queryset):
        value = self.current()
        if value == self.ALL:
            return queryset
        if value not in self.statuses.values:
            raise IncorrectLookupParameters(f"Unknown status {value!r}")
        return queryset.filter(status=value)

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.current() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


class QueueStatusFilter(_QueueFilter):
    """Payment status, showing the review queue unless asked otherwise."""

    all_title = "All statuses"
    statuses = Payment.Status
    default = QUEUE


class ReviewStatusFilter(admin.SimpleListFilter):
    title = "review status"
    parameter_name = "review"
    NONE = "none"

    def lookups(self, request, model_admin):
        return [*Review.Status.choices, (self.NONE, "Never held")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.NONE:
            return queryset.filter(review__isnull=True)
        if value in Review.Status.values:
            return queryset.filter(review__status=value)
        return queryset


class ReviewQueueFilter(_QueueFilter):
    """Review status, showing the open ones (the queue) unless asked otherwise."""

    title = "review status"
    statuses = Review.Status
    default = Review.Status.OPEN


class HeldKindFilter(admin.SimpleListFilter):
    title = "what is held"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("payment", "Payments"), ("deposit", "Deposits")]

    def queryset(self, request, queryset):
        if self.value() == "payment":
            return queryset.filter(payment__isnull=False)
        if self.value() == "deposit":
            return queryset.filter(deposit__isnull=False)
        return queryset
