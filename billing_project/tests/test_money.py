"""Converting between the amounts people type and minor units."""

from decimal import Decimal

import pytest

from billing_project.money import to_major, to_minor


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
