"""Schemathesis against Paydesk's own OpenAPI schema, in process through the WSGI app (no network).

Every operation gets generated requests (a bounded number each) as an authenticated customer with
a real session JWT; every response must be documented for its operation, match its schema, and
never be a 500. The schema's request constraints are the API's own: a request it calls valid is
accepted, one it calls invalid is refused (`negative_data_rejection`), and a valid one may only be
refused for a documented reason that lies in data the request points at, not in its shape.

Then the same checks over sequences of linked calls (stateful): Schemathesis infers the links from
the schema (a created payment's `id` is the `payment_id` of its capture, refunds, cancel and
review; a wallet's, of its deposits and transactions; a subscription's, of its update and cancel),
so the generated requests reach objects that exist, in every order, and not only 404s.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from schemathesis.core.failures import FailureGroup
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from apps.accounts.services import auth_session_start
from apps.accounts.tests.factories import UserFactory
from apps.core.fields import METADATA_MAX_KEY_LENGTH
from apps.payments.services import TOKEN_PATTERN
from apps.wallets.services import wallet_create, wallet_deposit

EXAMPLES_PER_OPERATION = 8

# The error codes API.md documents for a well-formed request whose outcome depends on stored data.
# A 400 with any other code (the generic `parameter_invalid` above all) means the schema promised
# something the API refuses.
DATA_DEPENDENT_REFUSALS: dict[str, set[str]] = {
    # Compared with the email and with a list of common passwords, which no schema can express.
    "POST /api/v1/auth/register": {"password_too_weak"},
    "POST /api/v1/auth/password": {"password_too_weak"},
    # A token is minted by the server and emailed: a well-formed one it never issued is refused.
    "POST /api/v1/auth/password-reset/confirm": {"token_invalid", "password_too_weak"},
    "POST /api/v1/transfers": {"insufficient_funds", "wallet_inactive", "currency_mismatch", "same_wallet"},
    # A token of the documented shape that the gateway does not know (`tok_x`): `resource_missing`.
    "POST /api/v1/payments": {"resource_missing"},
    "POST /api/v1/subscriptions": {"resource_missing"},
    "PATCH /api/v1/subscriptions/{subscription_id}": {"resource_missing"},
    "POST /api/v1/transfers/batch": {
        "insufficient_funds",
        "wallet_inactive",
        "currency_mismatch",
        "same_wallet",
    },
    # Reached through the links: a deposit in another currency than the wallet's, or to a frozen one.
    "POST /api/v1/wallets/{wallet_id}/deposits": {"currency_mismatch", "wallet_inactive", "resource_missing"},
    # A destination is a bank account token the gateway minted: a generated one it doesn't know.
    "POST /api/v1/wallets/{wallet_id}/payouts": {
        "insufficient_funds",
        "wallet_inactive",
        "destination_invalid",
    },
    "POST /api/v1/payments/{payment_id}/capture": {"capture_exceeds_authorized"},
    "POST /api/v1/payments/{payment_id}/refunds": {"refund_exceeds_captured"},
    # Generated requests can't sign their body: a well-formed signature that does not match it is
    # exactly what the endpoint exists to refuse.
    "POST /api/v1/webhooks/stripe": {"webhook_signature_invalid"},
    # A URL of the documented shape whose host is, or resolves to, an internal address.
    "POST /api/v1/webhook-endpoints": {"url_invalid"},
    "PATCH /api/v1/webhook-endpoints/{endpoint_id}": {"url_invalid"},
    "POST /api/v1/webhooks/authorize-net": {"webhook_signature_invalid"},
}
# Any text may happen to hold a Luhn-valid card number, or the NUL character (U+0000, which no
# PostgreSQL text holds), and either is refused wherever it appears.
REFUSED_ANYWHERE = {(400, "raw_card_data_rejected"), (400, "nul_character_rejected")}
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


def _metadata_key_over_the_limit(case) -> bool:
    """OpenAPI 3.0 has no `propertyNames`: the schema says the limit on metadata keys in words."""
    metadata = case.body.get("metadata") if isinstance(case.body, dict) else None
    return isinstance(metadata, dict) and any(len(key) > METADATA_MAX_KEY_LENGTH for key in metadata)


def _refused_for_documented_reason(case, response) -> bool:
    error = _error(response)
    code = error.get("code")
    documented = {(400, code) for code in DATA_DEPENDENT_REFUSALS.get(case.operation.label, ())}
    documented |= REFUSED_ANYWHERE
    if "Idempotency-Key" in (case.headers or {}):
        documented |= REFUSED_FOR_A_REUSED_KEY
    if (response.status_code, code) in documented:
        return True
    if (response.status_code, code, error.get("param")) == (400, "parameter_invalid", "metadata"):
        return _metadata_key_over_the_limit(case)
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
# Values come from the schema (the contract), not from string literals Schemathesis would otherwise
# harvest from the view modules and their imports: those move with every refactor (a services
# package's `__all__` names replace the literals of the module it was), and with them the seeded
# draws of every scenario, so what the linked calls reach would depend on the code's layout.
schema.config.analysis.constants.enabled = False
# Schema-invalid requests are the per-operation test's; the linked scenarios (stateful) send valid
# ones, which get past validation to the objects the links name.
schema.config.phases.stateful.generation.update(modes=["positive"])

# Card tokens are minted by the gateway, as cursors are by the server: a generated `tok_…` is almost
# never one it knows (400 `resource_missing`, documented above). Most generated tokens are swapped,
# by their length, for one of the gateway's test tokens, so payments, deposits and subscriptions get
# made and the links reach them; the rest stay unknown. Only a well-formed token is swapped, so a
# schema-invalid body stays invalid.
GATEWAY_TEST_TOKENS = (None, "tok_visa", "tok_mastercard", "tok_chargeDeclined", "tok_riskLevelElevated")
# Payout destinations likewise: most generated ones become the gateway's test bank accounts.
GATEWAY_TEST_DESTINATIONS = (None, "btok_success", "btok_success", "btok_accountClosed")


@schema.hook
def map_body(context, body):
    token = body.get("payment_method") if isinstance(body, dict) else None
    if isinstance(token, str) and TOKEN_PATTERN.match(token):
        known = GATEWAY_TEST_TOKENS[len(token) % len(GATEWAY_TEST_TOKENS)]
        if known is not None:
            return {**body, "payment_method": known}
    destination = body.get("destination") if isinstance(body, dict) else None
    if isinstance(destination, str) and destination:
        known = GATEWAY_TEST_DESTINATIONS[len(destination) % len(GATEWAY_TEST_DESTINATIONS)]
        if known is not None:
            return {**body, "destination": known}
    return body


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


CHECKS = {
    "excluded_checks": [positive_data_acceptance],
    "additional_checks": [valid_data_refused_only_for_documented_reasons],
}


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
    case.call_and_validate(headers=bearer, **CHECKS)


SCENARIOS = 60
STEPS_PER_SCENARIO = 6


def test_linked_calls_answer_as_documented(bearer):
    answered: list[tuple[str, int]] = []
    failures: list[str] = []

    class Customer(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": bearer}

        def after_call(self, response, case):
            answered.append((case.operation.label, response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                case.validate_response(response, headers=bearer, transport_kwargs=kwargs or None, **CHECKS)
            except FailureGroup as found:
                failures.append(f"{case.operation.label} -> {response.status_code}: {found}")
                raise

    try:
        Customer.run(
            settings=settings(
                max_examples=SCENARIOS,
                stateful_step_count=STEPS_PER_SCENARIO,
                deadline=None,
                derandomize=True,
                # Scenarios share one database, which each leaves changed: a scenario replayed to
                # report its failure meets other data and may draw other steps, which Hypothesis
                # calls flaky. The failure itself was recorded when it happened.
                phases=[Phase.generate],
                database=None,
                suppress_health_check=list(HealthCheck),
            )
        )
    except Flaky:
        # Hypothesis also replays earlier scenarios to vary them; meeting other data, a replay
        # may go otherwise. That ends the run; what ran until then was checked all the same.
        pass
    assert not failures, "\n\n".join(failures)

    # The links took the scenarios to objects that exist: calls on an id answered with success.
    reached = sorted({label for label, status in answered if status < 300 and "{" in label})
    assert len(reached) >= 4, reached
