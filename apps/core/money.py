"""Money is an integer amount in the currency's minor unit plus an ISO 4217 code. No floats.

`parse_amount` and `parse_currency` are the one definition of what API.md accepts; the DRF fields
in `apps.core.fields` and any service that takes raw input use them.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_AMOUNT = 1
MAX_AMOUNT = 99_999_999_999

_TWO_DECIMALS = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD "
    "CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD "
    "GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD "
    "MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP "
    "PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS "
    "TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWG"
)
_ZERO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"

# ISO 4217 code -> number of digits in the minor unit.
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_TWO_DECIMALS.split(), 2),
    **dict.fromkeys(_ZERO_DECIMALS.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
}


class MoneyValueError(ValueError):
    """Raised by the parsers with a message fit for the API's `message`."""


def parse_amount(value: object, *, name: str = "amount") -> int:
    # bool is an int subclass and floats are never money: both are refused outright.
    if isinstance(value, bool) or not isinstance(value, int):
        raise MoneyValueError(f"{name} must be a positive integer in the currency's minor unit")
    if not MIN_AMOUNT <= value <= MAX_AMOUNT:
        raise MoneyValueError(f"{name} must be between {MIN_AMOUNT} and {MAX_AMOUNT:,}")
    return value


def parse_currency(value: object, *, name: str = "currency") -> str:
    if not isinstance(value, str) or len(value) != 3:
        raise MoneyValueError(f"{name} must be a 3-letter ISO 4217 code")
    code = value.upper()
    if code not in CURRENCY_EXPONENTS:
        raise MoneyValueError(f"{name} '{value}' is not a supported ISO 4217 currency")
    return code


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("Money.amount must be an int of minor units")
        if self.currency not in CURRENCY_EXPONENTS:
            raise ValueError(f"unknown currency {self.currency!r}")

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise ValueError("cannot combine money in different currencies")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __str__(self) -> str:
        """`12.34 USD`, `1000 JPY`: for people (admin, emails), never parsed back."""
        exponent = CURRENCY_EXPONENTS[self.currency]
        sign = "-" if self.amount < 0 else ""
        whole, minor = divmod(abs(self.amount), 10**exponent)
        text = f"{whole:,}" if exponent == 0 else f"{whole:,}.{minor:0{exponent}d}"
        return f"{sign}{text} {self.currency}"
