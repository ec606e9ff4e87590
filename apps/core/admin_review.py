"""The review of one kind of held object in the admin, written once for payments and payouts.

A reviewer approves or denies from the object's page (`decide_view`, at `<pk>/decide/<decision>/`)
or in bulk from its list (`decide_selected`, called by the admin's own actions), always through the
back office's note page (`note_confirmation`). The decision itself is the subclass's
`review_decision`: its app's service (permission, note, never one's own money, one decision under the
row lock); a refusal it raises (already decided, own object …) becomes a message, never a 500.

A subclass says what it reviews (`review_noun`, `review_decisions`: verb and past tense) and
supplies `review_decision`, `review_label`, `review_effect` and `review_waiting`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from apps.core.admin_confirmation import Item, NoteForm, action_fields, note_confirmation
from apps.core.errors import ApplicationError

DECISIONS: dict[str, tuple[str, str]] = {"approve": ("Approve", "Approved"), "deny": ("Deny", "Denied")}


class ReviewDecisionsMixin(admin.ModelAdmin):
    review_noun: ClassVar[str]  # "payment", "payout"
    review_select_related: ClassVar[tuple[str, ...]] = ()

    # --- what a subclass supplies -----------------------------------------------------------------

    def has_review_permission(self, request: HttpRequest) -> bool:
        raise NotImplementedError

    def review_decision(self, request: HttpRequest, pk: str, decision: str, note: str) -> Any:
        """Decides through the app's service and returns the object as it now stands."""
        raise NotImplementedError

    def review_label(self, obj: Any) -> str:
        raise NotImplementedError

    def review_effect(self, obj: Any, decision: str) -> str:
        """What the decision does to this object, said on the note page."""
        raise NotImplementedError

    def review_waiting(self, obj: Any) -> bool:
        """Whether the object is waiting for a decision."""
        raise NotImplementedError

    # --- the object's page ------------------------------------------------------------------------

    def _url_name(self, view: str) -> str:
        opts = self.model._meta
        return f"{opts.app_label}_{opts.model_name}_{view}"

    def review_context(self, request: HttpRequest, obj: Model) -> dict[str, Any]:
        """The change page's Approve / Deny buttons."""
        return {
            "can_decide": self.review_waiting(obj) and self.has_review_permission(request),
            "decide_urls": {
                decision: reverse(f"admin:{self._url_name('decide')}", args=[quote(obj.pk), decision])
                for decision in DECISIONS
            },
        }

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/decide/<str:decision>/",
                self.admin_site.admin_view(self.decide_view),
                name=self._url_name("decide"),
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request: HttpRequest, object_id: str, decision: str) -> HttpResponse:
        """Approve or deny one object: the note page, then the service."""
        if decision not in DECISIONS:
            raise Http404("Unknown decision")
        if not self.has_review_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No such {self.review_noun}")
        change_url = reverse(f"admin:{self._url_name('change')}", args=[quote(obj.pk)])
        if request.method != "POST" and not self.review_waiting(obj):
            self.message_user(request, f"{obj.pk} is not waiting for a decision.", messages.WARNING)
            return HttpResponseRedirect(change_url)
        form = NoteForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            self.decide_one(request, str(obj.pk), decision, form.cleaned_data["note"])
            return HttpResponseRedirect(change_url)
        verb = DECISIONS[decision][0]
        return note_confirmation(
            request,
            model_admin=self,
            title=f"{verb} {self.review_noun} {obj.pk}",
            prompt=f"{verb} this {self.review_noun}? {self.review_effect(obj, decision)} "
            "The decision cannot be undone.",
            items=[Item(self.review_label(obj), change_url)],
            form=form,
            submit_label=f"{verb} {self.review_noun}",
            cancel_url=change_url,
            danger=decision == "deny",
        )

    # --- bulk decisions from the list -------------------------------------------------------------

    def decide_selected(
        self, request: HttpRequest, queryset: QuerySet[Any], decision: str
    ) -> HttpResponse | None:
        form = NoteForm(request.POST if "apply" in request.POST else None)
        chosen = list(queryset.select_related(*self.review_select_related).order_by("created_at", "pk"))
        if not form.is_valid():
            verb = DECISIONS[decision][0]
            many = f"{len(chosen)} {self.review_noun}(s)"
            return note_confirmation(
                request,
                model_admin=self,
                title=f"{verb} {many}",
                prompt=f"{verb} these {self.review_noun}s? One note applies to each decision; it cannot be undone.",
                items=[
                    Item(
                        self.review_label(obj),
                        reverse(f"admin:{self._url_name('change')}", args=[quote(obj.pk)]),
                    )
                    for obj in chosen
                ],
                form=form,
                submit_label=f"{verb} {many}",
                cancel_url=request.get_full_path(),
                hidden=action_fields(request, [str(obj.pk) for obj in chosen]),
                danger=decision == "deny",
            )
        for obj in chosen:
            self.decide_one(request, str(obj.pk), decision, form.cleaned_data["note"])
        return None

    def decide_one(self, request: HttpRequest, pk: str, decision: str, note: str) -> None:
        """One decision through the service; a refusal (already decided, own money …) becomes a message."""
        try:
            obj = self.review_decision(request, pk, decision, note)
        except ApplicationError as exc:
            self.message_user(request, f"{pk}: {exc.message}", messages.ERROR)
            return
        self.message_user(
            request,
            f"{DECISIONS[decision][1]} {pk}: the {self.review_noun} is now {obj.get_status_display().lower()}.",
            messages.SUCCESS,
        )
