"""The one confirmation page of the admin: staff say why before a decision is made.

Approving or denying payments and freezing wallets all go through it, so the audit trail always
carries a note and every such page looks and behaves the same (same field, same buttons).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django import forms
from django.contrib.admin import ModelAdmin, helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse

TEMPLATE = "admin/backoffice/note_confirmation.html"
SHOWN_ITEMS = 50


class NoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 70, "autofocus": True}),
        max_length=2000,
        help_text="Required. Kept with the decision and in the audit trail.",
    )


@dataclass(frozen=True)
class Item:
    """One object the decision applies to, as a line of the page."""

    label: str
    url: str = ""


def action_fields(request: HttpRequest, pks: Iterable[str]) -> list[tuple[str, str]]:
    """The hidden fields that bring an admin action's POST back to the same action and selection.

    "Select all N" (select_across) is passed on as such rather than as N ids, so a large queue
    stays under Django's limit on the number of form fields.
    """
    fields = [("action", request.POST.get("action", ""))]
    pks = list(pks)
    if request.POST.get("select_across") == "1":
        return [*fields, ("select_across", "1"), (helpers.ACTION_CHECKBOX_NAME, pks[0] if pks else "")]
    return [*fields, *((helpers.ACTION_CHECKBOX_NAME, pk) for pk in pks)]


def note_confirmation(
    request: HttpRequest,
    *,
    model_admin: ModelAdmin,
    title: str,
    prompt: str,
    items: Iterable[Item],
    form: NoteForm,
    submit_label: str,
    cancel_url: str,
    hidden: Iterable[tuple[str, str]] = (),
    danger: bool = False,
) -> TemplateResponse:
    """Renders the page; the form posts back to the URL it was shown at, with `hidden` fields."""
    items = list(items)
    return TemplateResponse(
        request,
        TEMPLATE,
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "prompt": prompt,
            "items": items[:SHOWN_ITEMS],
            "more_items": max(0, len(items) - SHOWN_ITEMS),
            "form": form,
            "submit_label": submit_label,
            "cancel_url": cancel_url,
            "hidden": list(hidden),
            "danger": danger,
            "opts": model_admin.model._meta,
        },
    )
