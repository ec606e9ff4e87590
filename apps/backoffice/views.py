"""The staff dashboard: the last 30 days of payments, the review queue, failures."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from apps.backoffice.selectors import dashboard_figures


def dashboard(request: HttpRequest) -> TemplateResponse:
    """Charts drawn in the browser from the same figures the tables beside them print.

    Staff only (the admin's login, `admin_view`), and of them only those granted
    `backoffice.view_dashboard` (the admin and reviewer roles): 403 for the others.
    """
    if not request.user.has_perm("backoffice.view_dashboard"):
        raise PermissionDenied
    figures = dashboard_figures(currency=(request.GET.get("currency") or "").upper() or None)
    days = [day.isoformat() for day in figures.days]
    chart_data = {
        "days": days,
        "statuses": figures.statuses,
        "counts": figures.counts,
        "currency": figures.currency,
        "exponent": figures.currency_exponent,
        "volumes": figures.volumes,
        "decisions": {"approved": figures.approved, "denied": figures.denied},
        "failures": {
            "codes": [code for code, _ in figures.failures],
            "counts": [count for _, count in figures.failures],
        },
        "payouts": figures.payouts,
        "webhooks": {
            "succeeded": figures.webhooks.succeeded if figures.webhooks else 0,
            "failed": figures.webhooks.failed if figures.webhooks else 0,
            "pending": figures.webhooks.pending if figures.webhooks else 0,
        },
    }
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "is_nav_sidebar_enabled": False,
        "subtitle": f"Last {len(days)} days, {days[0]} to {days[-1]} (UTC)",
        "figures": figures,
        "median_time_to_decision": _duration(figures.median_time_to_decision),
        "oldest_pending_delivery": _duration(
            timezone.now() - figures.webhooks.oldest_pending
            if figures.webhooks and figures.webhooks.oldest_pending
            else None
        ),
        "chart_data": chart_data,
    }
    return TemplateResponse(request, "admin/backoffice/dashboard.html", context)


def _duration(value: timedelta | None) -> str:
    """`3 d 4 h`, `2 h 05 min`, `4 min 10 s`, `12 s`: the two largest units are enough to read."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"
