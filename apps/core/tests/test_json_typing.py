"""Text and integer fields keep JSON's types: a number is not a name, "3" is not a day count."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_number_sent_for_a_text_field_is_refused_not_stored_as_text(auth_client):
    response = auth_client.post("/api/v1/api-keys", {"name": 0}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "name"
    assert auth_client.get("/api/v1/api-keys").json()["data"] == []


def test_a_string_sent_for_an_integer_field_is_refused(auth_client):
    response = auth_client.post(
        "/api/v1/subscriptions",
        {
            "plan_id": "basic",
            "amount": 500,
            "currency": "usd",
            "billing_cycle": "monthly",
            "payment_method": "tok_visa",
            "trial_days": "3",
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "trial_days"


def test_text_longer_than_its_limit_is_refused_even_when_padded_with_whitespace(auth_client):
    response = auth_client.post("/api/v1/api-keys", {"name": "k" * 99 + "  "}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "name"
