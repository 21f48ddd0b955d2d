from decimal import Decimal

import pytest

from billing_project.money import currency_exponent, format_money, round_minor


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
