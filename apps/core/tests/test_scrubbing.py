import pytest

from apps.core.scrubbing import SCRUBBED, luhn_valid, scrub

VISA = "4242424242424242"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "new_password",
        "newPassword",
        "client_secret",
        "STRIPE_WEBHOOK_SECRET",
        "token",
        "access_token",
        "refreshToken",
        "access",
        "refresh",
        "key",
        "api_key",
        "X-Api-Key",
        "stripe_api_key",
        "Authorization",
        "HTTP_AUTHORIZATION",
        "cvc",
        "CVV",
        "number",
        "card_number",
        "cardNumber",
        "pan",
        "security_code",
        "securityCode",
        "signature",
        "Stripe-Signature",
    ],
)
def test_secret_keys_are_scrubbed_whatever_their_case_or_spelling(key):
    assert scrub({key: "hunter2-hunter2"}) == {key: SCRUBBED}


@pytest.mark.parametrize(
    "key", ["email", "phone_number", "key_prefix", "idempotency_key", "access_level", "amount", "company"]
)
def test_ordinary_keys_that_merely_contain_a_secret_word_are_kept(key):
    assert scrub({key: "visible"}) == {key: "visible"}


def test_secret_values_are_scrubbed_whatever_their_type():
    assert scrub({"password": None, "token": {"raw": "abc"}, "cvc": 123}) == {
        "password": SCRUBBED,
        "token": SCRUBBED,
        "cvc": SCRUBBED,
    }


def test_nested_dicts_and_lists_are_scrubbed_and_the_input_left_untouched():
    # given
    value = {"user": {"email": "a@example.com", "password": "pw"}, "keys": [{"key": "sk_live_1"}]}

    # when
    result = scrub(value)

    # then
    assert result == {"user": {"email": "a@example.com", "password": SCRUBBED}, "keys": [{"key": SCRUBBED}]}
    assert value["user"]["password"] == "pw"
    assert value["keys"][0]["key"] == "sk_live_1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VISA, "•••• 4242"),
        ("4242 4242 4242 4242", "•••• 4242"),
        ("4242-4242-4242-4242", "•••• 4242"),
        ("4242  4242 4242 4242", "•••• 4242"),
        ("4242.4242.4242.4242", "•••• 4242"),
        ("4242/4242/4242/4242", "•••• 4242"),
        ("4242\t4242\t4242\t4242", "•••• 4242"),
        ("4242 - 4242 - 4242 - 4242", "•••• 4242"),
        ("card 5555555555554444 declined", "card •••• 4444 declined"),
        ("amex 3782 822463 10005.", "amex •••• 0005."),
        ("4242 4242 4242 4242 123", "•••• 4242 123"),
        ("ref 12 4242424242424242", "ref 12 •••• 4242"),
        ("two: 4000056655665556, 4242424242424242", "two: •••• 5556, •••• 4242"),
        ("pan=4242424242424242&exp=12/34", "pan=•••• 4242&exp=12/34"),
    ],
)
def test_card_numbers_in_text_keep_only_their_last_four_digits(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # fails Luhn
        "order 123456789012",  # 12 digits: too short for a card
        "id 42424242424242424242424242",  # a long id, not a card
        "2024-11-03 12:30, 3 seats",  # a date and an amount
        "ip 192.168.100.200, v1.2.3",
    ],
)
def test_digits_that_are_not_a_card_number_are_kept(text):
    assert scrub(text) == text


def test_card_numbers_are_masked_inside_nested_values_and_as_integers():
    value = {"note": f"paid with {VISA}", "items": [{"memo": VISA}], "card": int(VISA), "amount": 1500}

    assert scrub(value) == {
        "note": "paid with •••• 4242",
        "items": [{"memo": "•••• 4242"}],
        "card": "•••• 4242",
        "amount": 1500,
    }


def test_other_values_come_back_as_they_are():
    assert scrub([None, True, 1.5, 7]) == [None, True, 1.5, 7]
    assert scrub(("a", {"password": "x"})) == ["a", {"password": SCRUBBED}]


@pytest.mark.parametrize(
    ("digits", "valid"), [(VISA, True), ("378282246310005", True), ("4242424242424241", False)]
)
def test_luhn_check(digits, valid):
    assert luhn_valid(digits) is valid
