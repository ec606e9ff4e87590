"""The PCI guard refuses card data wherever it sits in a body and lets ordinary values through."""

import json

import pytest
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import InvalidRequest
from apps.core.ids import new_id
from apps.core.pci import find_card_data, reject_card_data
from apps.core.scrubbing import CARD_FIELDS, scrub

VISA = "4242424242424242"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"payment_method": VISA}, "payment_method"),
        ({"payment_method": "4242 4242 4242 4242"}, "payment_method"),
        ({"payment_method": "4242-4242-4242-4242"}, "payment_method"),
        ({"payment_method": int(VISA)}, "payment_method"),
        ({"payment_method": float(VISA)}, "payment_method"),
        ({"payment_method": "378282246310005"}, "payment_method"),  # amex, 15 digits
        ({"description": "4242.4242.4242.4242"}, "description"),
        ({"description": "card 4242/4242/4242/4242"}, "description"),
        ({"description": "4242\t4242\t4242\t4242"}, "description"),
        ({"description": "4242  4242  4242  4242"}, "description"),
        ({"description": "4242 -- 4242 . 4242 / 4242"}, "description"),
        ({"pan": "whatever"}, "pan"),
        ({"security_code": "123"}, "security_code"),
        ({"securityCode": 123}, "securityCode"),
        ({"amount": 1000, "metadata": {"note": "charge 5555 5555 5555 4444 please"}}, "metadata.note"),
        ({"metadata": {"cards": ["tok_visa", "6011111111111117"]}}, "metadata.cards[1]"),
        ({"number": "4000"}, "number"),
        ({"card_number": "whatever"}, "card_number"),
        ({"cardNumber": None}, "cardNumber"),
        ({"CARD-NUMBER": ""}, "CARD-NUMBER"),
        ({"cvc": "123"}, "cvc"),
        ({"CVV": 123}, "CVV"),
        ({"cvc2": "123"}, "cvc2"),
        ({"source": {"object": "card", "cvv2": "123"}}, "source.cvv2"),
        ({"card": {"exp_month": 12, "exp_year": 2030}}, "card.exp_month"),
        ({"card": {"token": "tok_visa", "expYear": 2030}}, "card.expYear"),
        ({"cards": [], "card": [{"exp_year": 2030}]}, "card[0].exp_year"),
        ({"source": {"exp_month": 12, "exp_year": 2030, "number": VISA}}, "source.exp_month"),
        ({"source": {"exp_month": 12, "pan": VISA}}, "source.exp_month"),
        ({"items": [{"sku": "a"}, {"extra": {"card": {"cvc": "1"}}}]}, "items[1].extra.card.cvc"),
        ({"metadata": {"a": {"b": {"c": [[{"d": f"x {VISA} y"}]]}}}}, "metadata.a.b.c[0][0].d"),
    ],
)
def test_card_data_is_found_with_its_param_path(body, param):
    assert find_card_data(body) == param


def test_the_first_card_data_in_document_order_is_named():
    assert find_card_data({"a": {"b": {"cvc": "1"}}, "number": VISA}) == "a.b.cvc"


def test_a_card_number_used_as_a_key_is_found_and_masked_in_the_path():
    found = find_card_data({"metadata": {VISA: "mine"}})

    assert found == "metadata.•••• 4242"


def test_card_data_under_thousands_of_levels_of_nesting_is_found():
    body: dict = {"cvc": "123"}
    for _ in range(5000):
        body = {"nested": body}

    assert find_card_data(body) == ".".join(["nested"] * 5000) + ".cvc"


@pytest.mark.parametrize(
    "body",
    [
        {"payment_method": "tok_visa"},
        {"payment_method": "tok_chargeDeclinedInsufficientFunds"},
        {"payment_method": f"wallet:{new_id('wal')}"},
        {"source_wallet": new_id("wal"), "destination_wallet": new_id("wal"), "amount": 1000},
        {"amount": 1000, "currency": "usd"},
        {"amount": 99_999_999_999, "currency": "JPY"},
        {"metadata": {"phone": "2025550142", "phone_number": 2025550142, "mobile": "+1 202-555-0142"}},
        {"metadata": {"order": "order 123456789012"}},  # 12 digits: too short for a card
        {"metadata": {"ref": "42424242424242424242424242"}},  # a long id, not a card
        {"metadata": {"almost": "4242424242424241", "as_int": 4242424242424241}},  # Luhn fails
        {"description": "Invoice 2024-11 for 3 seats", "customer_id": "cus_123"},
        {"description": "paid 1.234.567,89 on 2024/11/03 at 12:30:45.123"},
        {"exp_month": 12, "exp_year": 2030},  # an expiry date alone is no card
        {"card": "tok_visa"},
        {"card": {"token": "tok_visa", "brand": "visa", "last4": "4242"}},
        {"account_number": "12345678", "key": "value", "flag": True, "empty": None, "ratio": 0.5},
        {"big": 10**40, "huge_float": 1e300, "negative": -1000},
        [],
        {},
    ],
)
def test_ordinary_values_are_not_card_data(body):
    assert find_card_data(body) is None
    reject_card_data(body)


def test_rejection_is_the_documented_error_and_never_repeats_the_card():
    with pytest.raises(InvalidRequest) as excinfo:
        reject_card_data({"metadata": {"note": f"my card is {VISA}", VISA: "x"}})

    error = excinfo.value
    assert (error.status_code, error.code, error.param) == (400, "raw_card_data_rejected", "metadata.note")
    assert error.message == "Raw card data is not accepted; send a token from the gateway instead."
    assert VISA not in json.dumps(error.as_envelope(), ensure_ascii=False)


class _GuardedApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        reject_card_data(request.data)
        return Response({"ok": True}, status=201)


urlpatterns = [path("api/v1/test/guarded", _GuardedApi.as_view())]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_client_sending_a_card_gets_a_400_envelope_that_does_not_echo_it(api_client):
    # when
    response = api_client.post(
        "/api/v1/test/guarded",
        {
            "amount": 1000,
            "currency": "usd",
            "payment_method": "tok_visa",
            "card": {"number": VISA, "cvc": "123"},
        },
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "raw_card_data_rejected",
            "message": "Raw card data is not accepted; send a token from the gateway instead.",
            "param": "card.number",
        }
    }
    assert VISA not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_client_sending_a_token_passes_the_guard(api_client):
    response = api_client.post(
        "/api/v1/test/guarded",
        {"amount": 1000, "currency": "usd", "payment_method": "tok_visa", "metadata": {"order": "A-1"}},
        format="json",
    )

    assert response.status_code == 201


@pytest.mark.parametrize("name", sorted(CARD_FIELDS))
def test_every_card_field_the_scrubber_masks_is_refused_by_the_guard(name):
    assert find_card_data({name: "x"}) == name
    assert scrub({name: "x"}) == {name: "[scrubbed]"}
