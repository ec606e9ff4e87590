"""Schemathesis against Paydesk's own OpenAPI schema, in process through the WSGI app (no network).

Every operation gets generated requests (a bounded number each) as an authenticated customer with
a real session JWT; every response must be documented for its operation, match its schema, and
never be a 500.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from apps.accounts.services import auth_session_start
from apps.accounts.tests.factories import UserFactory
from apps.wallets.services import wallet_create, wallet_deposit

EXAMPLES_PER_OPERATION = 8

# Enforced: no 5xx, every status code documented, every response body and content type as
# documented. Not yet enforced (the schema's request constraints are looser than the API's: e.g.
# `limit=0` or `payment_method: "0"` are schema-valid but refused with a 400): README
# "Reliability" lists what is left.
NOT_YET_ENFORCED = [positive_data_acceptance, negative_data_rejection]


# Served by the app itself, as a client would fetch it (the schema view needs no database).
schema = schemathesis.openapi.from_wsgi("/api/v1/schema?format=json", get_wsgi_application())


@pytest.fixture
def bearer(transactional_db, settings) -> dict[str, str]:
    # webhooks configured as in production: an unconfigured secret is a deliberate 503
    settings.STRIPE_WEBHOOK_SECRET = "whsec_schemathesis"
    settings.AUTHORIZENET_SIGNATURE_KEY = "A" * 128
    customer = UserFactory()
    wallet = wallet_create(actor=customer, user=customer, currency="USD")
    wallet_deposit(
        actor=customer, user=customer, wallet_id=wallet.pk, amount=100_000, payment_method="tok_visa"
    )
    return {"Authorization": f"Bearer {auth_session_start(user=customer).tokens.access}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, bearer):
    # Committed data (transactional_db): the WSGI handler closes the database connection after each
    # request, as in production, which a test-wide transaction would not survive.
    case.call_and_validate(headers=bearer, excluded_checks=NOT_YET_ENFORCED)
