"""Races that matter for auth, run with real threads against PostgreSQL and Redis."""

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.models import AuthSession, User
from apps.accounts.services import auth_session_start
from apps.accounts.tests.factories import UserFactory

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


def run_together(count: int, request: Callable[[int], int]) -> Counter:
    """Runs `request(n)` in `count` threads released at once; counts the status codes returned."""
    start = threading.Barrier(count)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait()
            statuses.append(request(n))
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return Counter(statuses)


def test_concurrent_guesses_get_no_more_password_checks_than_the_limit(settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    user = UserFactory()

    statuses = run_together(
        12,
        lambda n: (
            APIClient()
            .post("/api/v1/auth/login", {"email": user.email, "password": f"guess {n}"})
            .status_code
        ),
    )

    assert statuses == Counter({401: 5, 429: 7})


def test_one_refresh_token_used_twice_at_once_rotates_once_and_ends_the_session():
    user = UserFactory()
    refresh = auth_session_start(user=user).tokens.refresh
    bodies: list[dict] = []

    def use(n: int) -> int:
        response = APIClient().post("/api/v1/auth/refresh", {"refresh": refresh})
        bodies.append(response.json())
        return response.status_code

    statuses = run_together(6, use)

    # one wins the row lock and rotates; the rest are judged after it, as replays
    assert statuses == Counter({200: 1, 401: 5})
    assert AuthSession.objects.get(user=user).revoked_reason == "refresh_token_reuse"
    winner = next(body for body in bodies if "refresh" in body)
    assert APIClient().post("/api/v1/auth/refresh", {"refresh": winner["refresh"]}).status_code == 401


def test_one_email_registered_at_once_in_different_cases_makes_one_user():
    emails = ["race@example.com", "RACE@example.com", "Race@example.com", "race@EXAMPLE.com"]

    statuses = run_together(
        len(emails),
        lambda n: (
            APIClient()
            .post("/api/v1/auth/register", {"email": emails[n], "password": "a long and unusual passphrase"})
            .status_code
        ),
    )

    assert statuses == Counter({201: 1, 409: 3})
    assert User.objects.count() == 1
