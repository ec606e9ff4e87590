"""Schemathesis against Paydesk's own OpenAPI schema, in process through the WSGI app (no network).

Every operation gets generated requests (a bounded number each) as an authenticated customer with
a real session JWT; every response must be documented for its operation, match its schema, and
never be a 500. The schema's request constraints are the API's own: a request it calls valid is
accepted, one it calls invalid is refused (`negative_data_rejection`), and a valid one may only be
refused for a documented reason that lies in data the request points at, not in its shape.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from apps.accounts.services import auth_session_start
from apps.accounts.tests.factories import UserFactory
from apps.wallets.services import wallet_create, wallet_deposit

EXAMPLES_PER_OPERATION = 8

# The error codes API.md documents for a well-formed request whose outcome depends on stored data.
# A 400 with any other code (the generic `parameter_invalid` above all) means the schema promised
# something the API refuses.
DATA_DEPENDENT_REFUSALS: dict[str, set[str]] = {
    # Compared with the email and with a list of common passwords, which no schema can express.
    "POST /api/v1/auth/register": {"password_too_weak"},
    "POST /api/v1/transfers": {"insufficient_funds", "wallet_inactive", "currency_mismatch", "same_wallet"},
    "POST /api/v1/payments/{payment_id}/capture": {"capture_exceeds_authorized"},
    "POST /api/v1/payments/{payment_id}/refunds": {"refund_exceeds_captured"},
    # Generated requests can't sign their body: a well-formed signature that does not match it is
    # exactly what the endpoint exists to refuse.
    "POST /api/v1/webhooks/stripe": {"webhook_signature_invalid"},
    "POST /api/v1/webhooks/authorize-net": {"webhook_signature_invalid"},
}
# Any text may happen to hold a Luhn-valid card number, which is refused wherever it appears.
REFUSED_ANYWHERE = {(400, "raw_card_data_rejected")}
# Generated Idempotency-Keys repeat across examples, which all share one database: a key seen before
# with another body is refused, as API.md says.
REFUSED_FOR_A_REUSED_KEY = {(422, "idempotency_key_reused")}
# A cursor is opaque and minted by the server: a well-formed one it never issued is refused, as an
# unknown id is a 404.
SERVER_MINTED_PARAMS = {"cursor"}


def _error(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _refused_for_documented_reason(case, response) -> bool:
    error = _error(response)
    code = error.get("code")
    documented = {(400, code) for code in DATA_DEPENDENT_REFUSALS.get(case.operation.label, ())}
    documented |= REFUSED_ANYWHERE
    if "Idempotency-Key" in (case.headers or {}):
        documented |= REFUSED_FOR_A_REUSED_KEY
    if (response.status_code, code) in documented:
        return True
    return (
        response.status_code == 400
        and code == "parameter_invalid"
        and error.get("param") in SERVER_MINTED_PARAMS
    )


def valid_data_refused_only_for_documented_reasons(ctx, response, case):
    """`positive_data_acceptance`, except for the documented refusals above."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if not _refused_for_documented_reason(case, response):
            raise
    return None


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
    case.call_and_validate(
        headers=bearer,
        excluded_checks=[positive_data_acceptance],
        additional_checks=[valid_data_refused_only_for_documented_reasons],
    )
