"""Converting between the amounts people type and minor units."""

from decimal import Decimal

import pytest

from core.money import currency_exponent, format_money, round_minor, to_major, to_minor


@pytest.mark.parametrize(("typed", "currency", "minor"), [
    ("9.99", "USD", 999), ("10", "usd", 1000), ("0.5", "EUR", 50), ("1500", "JPY", 1500), ("1.234", "KWD", 1234),
])
def test_to_minor_converts_typed_amounts(typed, currency, minor):
    assert to_minor(Decimal(typed), currency) == minor


@pytest.mark.parametrize(("typed", "currency"), [("1.005", "USD"), ("1.5", "JPY"), ("0.0001", "KWD")])
def test_to_minor_refuses_precision_below_the_minor_unit(typed, currency):
    with pytest.raises(ValueError, match="more decimals than"):
        to_minor(Decimal(typed), currency)


def test_to_major_round_trips():
    assert to_major(2999, "USD") == Decimal("29.99")
    assert to_major(1500, "JPY") == Decimal("1500")
    assert to_minor(to_major(2999, "USD"), "USD") == 2999


@pytest.mark.parametrize(("currency", "exponent"), [
    ("USD", 2), ("EUR", 2), ("usd", 2), ("JPY", 0), ("KRW", 0), ("jpy", 0), ("KWD", 3), ("BHD", 3),
])
def test_currency_exponent_follows_iso_4217(currency, exponent):
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("0.5"), 1), (Decimal("1.5"), 2), (Decimal("2.5"), 3), (Decimal("2.4999"), 2),
    (Decimal("2.5000001"), 3), (Decimal("-0.5"), -1), (Decimal("-2.5"), -3), (Decimal("-2.4"), -2),
    (Decimal("0"), 0), (7, 7),
])
def test_round_minor_rounds_half_up_away_from_zero(value, expected):
    # Half-up (not banker's rounding): 2.5 cents is 3 cents, and a credit of -2.5 is -3.
    assert round_minor(value) == expected
    assert isinstance(round_minor(value), int)


def test_round_minor_is_exact_for_tiny_usage_prices():
    # 12,345 API calls at 0.04 cents each: 493.8 cents, which floats would not always round the same way.
    assert round_minor(Decimal("12345") * Decimal("0.04")) == 494
    assert round_minor(Decimal("0.125") * 4) == 1


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (999, "USD", "9.99 USD"), (123456789, "usd", "1,234,567.89 USD"), (500, "JPY", "500 JPY"),
    (1234, "KWD", "1.234 KWD"), (0, "EUR", "0.00 EUR"), (-250, "USD", "-2.50 USD"),
])
def test_format_money_uses_the_currency_exponent(amount, currency, text):
    assert format_money(amount, currency) == text
