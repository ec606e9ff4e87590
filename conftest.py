"""Fixtures shared by every app's tests and the cross-app suites in tests/."""

from collections.abc import Callable

import pytest
from celery._state import _set_task_join_will_block
from rest_framework.test import APIClient

from apps.accounts.models import Roles, User
from apps.accounts.services import api_key_create, auth_session_start
from apps.accounts.tests.factories import UserFactory
from tests.cache import empty_cache
from tests.fakes.authorizenet import FakeAuthorizeNet
from tests.fakes.gateways import AuthorizeNetHarness, StripeHarness
from tests.fakes.stripe_server import FakeStripe
from tests.workers import tasks_published_to


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache."""
    empty_cache()


@pytest.fixture(params=["redis", "local-memory"])
def cache_backend(request, settings) -> str:
    """Runs the test on Redis (the test settings' cache), then on the embedded default's local
    memory: for code with a Redis script on its fast path and the same steps by hand elsewhere."""
    if request.param == "local-memory":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    return request.param


@pytest.fixture(autouse=True)
def _outside_any_task():
    """Each test starts outside any Celery task. Eager tasks mark "inside a task" in one process-wide
    flag (so `.get()` is refused); eager tasks finishing in several threads at once (the concurrency
    tests) can leave it set, and a later test's `EagerResult.get()` would then be refused."""
    _set_task_join_will_block(False)


@pytest.fixture
def broker_down():
    """The test runs with the broker unreachable: publishing fails at once (tasks not eager)."""
    with tasks_published_to():
        yield


@pytest.fixture
def fake_stripe(settings):
    """A Stripe look-alike on a free local port; STRIPE_API_KEY and STRIPE_API_BASE point at it.
    (Shared by the gateways, payments and webhooks tests.)"""
    with FakeStripe() as server:
        settings.STRIPE_API_KEY = server.api_key
        settings.STRIPE_API_BASE = server.url
        yield server


@pytest.fixture
def fake_authorizenet(settings):
    """An Authorize.Net look-alike on a free local port (its XML API); PAYMENT_GATEWAY=authorizenet
    and the AUTHORIZENET_* settings point at it. (Shared by the gateways, payments and webhooks tests.)"""
    with FakeAuthorizeNet() as server:
        AuthorizeNetHarness(server, settings)
        yield server


@pytest.fixture(params=["stripe", "authorizenet"])
def card_gateway(request, settings):
    """The test runs once on each card gateway with a real provider behind it (Stripe, Authorize.Net:
    each a local fake over real HTTP), PAYMENT_GATEWAY set to it: a `tests.fakes.gateways` harness."""
    if request.param == "stripe":
        with FakeStripe() as server:
            yield StripeHarness(server, settings)
    else:
        with FakeAuthorizeNet() as server:
            yield AuthorizeNetHarness(server, settings)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db) -> User:
    """A customer."""
    return UserFactory()


@pytest.fixture
def other_user(db) -> User:
    """Another customer, for proving one principal never sees another's objects."""
    return UserFactory()


@pytest.fixture
def staff_reviewer(db) -> User:
    """Staff (can log into the admin) in the reviewer group."""
    return UserFactory(is_staff=True, roles=[Roles.REVIEWER])


@pytest.fixture
def client_for(db) -> Callable[[User], APIClient]:
    """`client_for(user)`: an APIClient logged in as that user with a real session's access JWT."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_session_start(user=user).tokens.access}")
        return client

    return make


@pytest.fixture
def api_key_client_for(db) -> Callable[[User], APIClient]:
    """`api_key_client_for(user)`: an APIClient authenticating with a fresh API key of that user."""

    def make(user: User) -> APIClient:
        _, secret = api_key_create(user=user, name="test key", actor=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
        return client

    return make


@pytest.fixture
def auth_client(client_for, user) -> APIClient:
    """Logged in as `user` (Bearer JWT)."""
    return client_for(user)


@pytest.fixture
def api_key_client(api_key_client_for, user) -> APIClient:
    """Authenticated as `user` through an API key."""
    return api_key_client_for(user)


@pytest.fixture
def reviewer_client(client_for, staff_reviewer) -> APIClient:
    """Logged in as `staff_reviewer` (Bearer JWT)."""
    return client_for(staff_reviewer)
