"""The admin's idle timeout: a staff session ends after ADMIN_SESSION_IDLE_SECONDS without a request.

Django's session lives SESSION_COOKIE_AGE (two weeks) whatever the staff member does; an unattended
browser with the back office open would stay signed in that long. Every request of a signed-in
session stamps its time in the session; a request arriving later than the idle limit after the
previous one logs the session out and is sent to the admin's login (which returns to the page).
Only Django sessions are concerned (the admin and the back office): the API authenticates each
request with a token and never has a session user.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

LAST_ACTIVITY = "_paydesk_last_activity"


class AdminIdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            last = request.session.get(LAST_ACTIVITY)
            if isinstance(last, int | float) and now - last > settings.ADMIN_SESSION_IDLE_SECONDS:
                logout(request)  # flushes the session: its data and cookie are gone
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            request.session[LAST_ACTIVITY] = now
        return self.get_response(request)
