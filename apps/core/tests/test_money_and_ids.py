import pytest

from apps.core.ids import has_prefix, new_id
from apps.core.money import Money, MoneyValueError, parse_amount, parse_currency


def test_ids_are_prefixed_unique_and_sort_by_creation():
    ids = [new_id("pay") for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert all(has_prefix(value, "pay") for value in ids)
    assert ids[0][:14] <= ids[-1][:14]  # the time part never goes backwards


def test_has_prefix_rejects_other_types_and_shapes():
    assert not has_prefix(new_id("wal"), "pay")
    assert not has_prefix("pay_short", "pay")
    assert not has_prefix(None, "pay")


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1234, "USD"), "12.34 USD"),
        (Money(5, "EUR"), "0.05 EUR"),
        (Money(1000, "JPY"), "1,000 JPY"),
        (Money(1_234_567, "KWD"), "1,234.567 KWD"),
        (Money(-250, "USD"), "-2.50 USD"),
    ],
)
def test_money_formats_in_the_currencys_minor_unit(money, text):
    assert str(money) == text


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(10.5, "USD")
    with pytest.raises(ValueError, match="different currencies"):
        Money(1, "USD") + Money(1, "EUR")
    assert Money(7, "USD") - Money(2, "USD") == Money(5, "USD")


def test_parsers_are_the_api_contract():
    assert parse_amount(1) == 1
    assert parse_currency("gbp") == "GBP"
    for bad in (0, 100_000_000_000, 1.0, "1", True):
        with pytest.raises(MoneyValueError):
            parse_amount(bad)
