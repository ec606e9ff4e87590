"""The PCI guard: raw card data never enters Paydesk; clients send tokens from the gateway.

`find_card_data(body)` walks a request body (dicts and lists, metadata included) in document order
and returns the param path of the first piece of card data, e.g. "card.number", "metadata.note",
"items[1].cvc" ("" when the body itself is a card number), or None. Card data is:

1. a card number: a string or an integer holding 13-19 digits (any whitespace, dots, slashes
   or dashes between groups) that passes the Luhn check - anywhere, even inside text or as a key. Detection
   is `apps.core.scrubbing`'s, so what the guard refuses is exactly what the scrubber would mask.
   About one random 13-19 digit number in ten passes Luhn and is refused too: a false positive
   costs the client a retry, a false negative puts a card number in our database and logs;
2. a key named as one of `apps.core.scrubbing.CARD_FIELDS` (number, card_number, pan, cvc, cvv,
   security_code, ...), whatever its value (compared without
   case, `_`, `-` or spaces, so cardNumber and CARD-NUMBER count);
3. exp_month / exp_year in an object that is a card: one under a `card` key, or one that also
   holds a card number.

A gateway's own identifier whose digits can read as a card number is not card data when it is a
`payment_method`: a gateway app registers its shape with `register_token_format` (Authorize.Net's
customer profile `anet_profile:<customerProfileId>/<paymentProfileId>`: two ids of about ten digits
which, joined by the slash, pass the Luhn check as 13-19 digits about one time in ten).

`reject_card_data(body)` raises the API error. Neither ever repeats the card data: the message is
fixed and a key that holds a card number appears masked in the path.
"""

from __future__ import annotations

import re
from typing import Any

from apps.core.errors import InvalidRequest
from apps.core.scrubbing import is_card_field, mask_card_numbers

REJECTED_CODE = "raw_card_data_rejected"
REJECTED_MESSAGE = "Raw card data is not accepted; send a token from the gateway instead."

_EXPIRY_KEYS = frozenset({"expmonth", "expyear"})
_PAYMENT_METHOD_KEY = "paymentmethod"
_token_formats: list[re.Pattern[str]] = []
_CARD_KEY = "card"
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]")


def find_card_data(data: Any) -> str | None:
    # Iterative depth-first walk: a deeply nested body must get a 400 from us, not a RecursionError.
    # Each entry: (path, key or None for list items and the root, value, flag), where the flag says
    # whether the enclosing object is a card (dict entries) or the list sits under `card` (items).
    pending: list[tuple[str, Any, Any, bool]] = [("", None, data, False)]
    while pending:
        path, key, value, flag = pending.pop()
        if key is not None and _is_card_key(key, in_card=flag):
            return path
        under_card = _key_name(key) == _CARD_KEY if key is not None else flag
        if isinstance(value, dict):
            is_card = under_card or _holds_card_number(value)
            pending.extend(
                (_child_path(path, child_key), child_key, child, is_card)
                for child_key, child in reversed(value.items())
            )
        elif isinstance(value, list | tuple):
            pending.extend(
                (f"{path}[{index}]", None, item, under_card)
                for index, item in reversed(list(enumerate(value)))
            )
        elif _is_card_number(value) and not _is_gateway_token(key, value):
            return path
    return None


def register_token_format(pattern: re.Pattern[str]) -> None:
    """Declares a gateway token's exact shape (see the module docstring); registered once at start-up."""
    if pattern not in _token_formats:
        _token_formats.append(pattern)


def _is_gateway_token(key: Any, value: Any) -> bool:
    return (
        key is not None
        and _key_name(key) == _PAYMENT_METHOD_KEY
        and isinstance(value, str)
        and any(pattern.fullmatch(value) for pattern in _token_formats)
    )


def reject_card_data(data: Any) -> None:
    path = find_card_data(data)
    if path is not None:
        raise InvalidRequest(REJECTED_MESSAGE, code=REJECTED_CODE, param=path or None)


def _is_card_key(key: Any, *, in_card: bool) -> bool:
    if is_card_field(key):
        return True
    return (in_card and _key_name(key) in _EXPIRY_KEYS) or _is_card_number(str(key))


def _holds_card_number(obj: dict[Any, Any]) -> bool:
    return any(is_card_field(key) or _is_card_number(value) for key, value in obj.items())


def _is_card_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        # Outside 13-19 digits an integer can't be a card (and str() of a huge one is refused).
        if not 10**12 <= abs(value) < 10**19:
            return False
        value = str(value)
    # The scrubber masks exactly the card numbers it finds, so a change means one was there.
    return isinstance(value, str) and mask_card_numbers(value) != value


def _key_name(key: Any) -> str:
    return _NOT_ALPHANUMERIC.sub("", str(key).lower())


def _child_path(path: str, key: Any) -> str:
    segment = mask_card_numbers(str(key))
    return f"{path}.{segment}" if path else segment
