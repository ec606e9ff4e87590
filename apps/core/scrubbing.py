"""Masks secrets and card data before anything is written to the audit trail, logs or raw logs.

`scrub(value)` returns a scrubbed deep copy of dicts, lists and tuples (tuples become lists, as in
JSON); strings and integers are checked for card numbers; every other value is returned as it is.
The input is never modified.

Rules:

1. Secret keys. A dict key is compared case-insensitively after camelCase, `-`, `.` and spaces
   are turned into `_` (`Stripe-Signature`, `newPassword`, `HTTP_AUTHORIZATION`). Its value,
   whatever it is (a string, a dict, None), becomes "[scrubbed]" when
   - one of the key's `_`-separated words is one of `SECRET_WORDS` (password, secret, token,
     authorization, cvc, cvv, signature, …): `new_password`, `client_secret`, `access_token`;
   - or the whole key is one of `SECRET_KEYS` (access, refresh, key, api_key, …) or of
     `CARD_FIELDS` (number, card_number, pan, cvc, security_code, …; the PCI guard refuses the
     same list), or it ends in `_api_key`. These words are too common to match as parts
     (`phone_number`, `key_prefix`, `access_level` are kept).
2. Card numbers. In any string (and any integer), a run of digits in which any run of whitespace
   (tabs, double spaces), dots, slashes or dashes may separate groups is looked at: the longest sequence of whole groups holding 13 to 19
   digits that passes the Luhn check is replaced by `•••• ` and its last four digits, so
   "4242 4242 4242 4242 cvc 123" becomes "•••• 4242 cvc 123". Longer unbroken digit runs are ids,
   not cards, and are kept. About one random 13–19 digit number in ten passes Luhn and is masked
   too: a false positive costs a readable value, a false negative leaks a card.
"""

from __future__ import annotations

import re
from typing import Any

SCRUBBED = "[scrubbed]"
CARD_MASK = "•••• "

SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "authorization",
        "cookie",
        "cvc",
        "cvv",
        "cvv2",
        "signature",
    }
)
SECRET_KEYS = frozenset(
    {
        "access",
        "refresh",
        "key",
        "raw_key",
        "api_key",
        "apikey",
        "private_key",
    }
)
# Card fields: the guard (apps.core.pci) refuses a key with one of these names whatever its value,
# and the scrubber masks its value. Compared without case, `_`, `-`, `.` or spaces.
CARD_FIELDS = frozenset({"number", "card_number", "pan", "cvc", "cvv", "cvc2", "cvv2", "security_code"})
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]")
_CARD_FIELD_NAMES = frozenset(_NOT_ALPHANUMERIC.sub("", name) for name in CARD_FIELDS)

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")
# Digit runs worth a look: at least 13 digits, any run of whitespace, dots, slashes or dashes
# between groups. Separators and digits are disjoint, so the match is linear.
_SEPARATOR_CHARS = r"\s./\-"
_DIGIT_RUN = re.compile(rf"(?<!\d)\d(?:[{_SEPARATOR_CHARS}]*\d){{12,}}")
_GROUP_SPLIT = re.compile(rf"([{_SEPARATOR_CHARS}]+)")
MIN_CARD_DIGITS = 13
MAX_CARD_DIGITS = 19


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: SCRUBBED if is_secret_key(key) else scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return mask_card_numbers(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10 ** (MIN_CARD_DIGITS - 1):
        masked = mask_card_numbers(str(value))
        return value if masked == str(value) else masked
    return value


def is_secret_key(key: object) -> bool:
    name = _SEPARATORS.sub("_", _CAMEL_BOUNDARY.sub("_", str(key))).lower()
    if name in SECRET_KEYS or name.endswith("_api_key") or is_card_field(key):
        return True
    return any(word in SECRET_WORDS for word in name.split("_"))


def is_card_field(key: object) -> bool:
    return _NOT_ALPHANUMERIC.sub("", str(key).lower()) in _CARD_FIELD_NAMES


def mask_card_numbers(text: str) -> str:
    return _DIGIT_RUN.sub(_mask_run, text)


def _mask_run(match: re.Match[str]) -> str:
    # Even indexes are digit groups, odd ones the separator that followed them.
    parts = _GROUP_SPLIT.split(match.group())
    groups = parts[::2]
    out: list[str] = []
    start = 0
    while start < len(groups):
        end = _card_end(groups, start)
        if end is None:
            out.append(parts[2 * start])
            if start < len(groups) - 1:
                out.append(parts[2 * start + 1])
            start += 1
            continue
        out.append(CARD_MASK + "".join(groups[start:end])[-4:])
        if end < len(groups):
            out.append(parts[2 * end - 1])
        start = end
    return "".join(out)


def _card_end(groups: list[str], start: int) -> int | None:
    """End (exclusive) of the longest card number made of whole groups from `start`, if any."""
    found = None
    digits = ""
    for end in range(start + 1, len(groups) + 1):
        digits += groups[end - 1]
        if len(digits) > MAX_CARD_DIGITS:
            break
        if len(digits) >= MIN_CARD_DIGITS and luhn_valid(digits):
            found = end
    return found


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0
