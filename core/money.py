"""Money helpers shared by every app.

Amounts are integers in the currency's minor unit (cents for USD, yen for JPY) so sums are exact and
the database stores them as BIGINT. Fractional prices (usage) are Decimal and become minor units only
through `round_minor`, the single place where rounding happens.
"""

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor-unit exponents that differ from the usual 2.
_ZERO_DECIMAL = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                 "VND", "VUV", "XAF", "XOF", "XPF"}
_THREE_DECIMAL = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}


def currency_exponent(currency: str) -> int:
    code = currency.upper()
    if code in _ZERO_DECIMAL:
        return 0
    if code in _THREE_DECIMAL:
        return 3
    return 2


def round_minor(value: Decimal | int) -> int:
    """Round an amount already expressed in minor units (possibly fractional) half-up to an int."""
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_money(amount: int, currency: str) -> str:
    exponent = currency_exponent(currency)
    major = Decimal(amount).scaleb(-exponent)
    return f"{major:,.{exponent}f} {currency.upper()}"


def to_major(amount: int, currency: str) -> Decimal:
    """Minor units as the decimal amount a person reads and types (999 USD -> 9.99)."""
    return Decimal(amount).scaleb(-currency_exponent(currency))


def to_minor(amount: Decimal, currency: str) -> int:
    """A decimal amount typed by a person (9.99 USD) in minor units (999).

    Raises ValueError for precision below the minor unit: silently rounding money someone typed would
    record a different amount from the one they meant.
    """
    minor = Decimal(amount).scaleb(currency_exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency.upper()} allows.")
    return int(minor)
