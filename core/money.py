"""Money helpers shared by every app.

Amounts are integers in the currency's minor unit (cents for USD, yen for JPY) so sums are exact and
the database stores them as BIGINT. Fractional prices (usage) are Decimal and become minor units only
through `round_minor`, the single place where rounding happens.
"""

from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import format_currency, get_currency_precision
from django.utils.functional import lazy
from django.utils.translation import gettext as _

from core.l10n import babel_locale, localize_digits

# Every locale writes an amount as its number, then the ISO code: codes are unambiguous where symbols are
# not ("$", "US$", "ر.س.‏"), and the one order keeps columns of figures aligned in both languages. The
# pattern's fraction digits are replaced by the currency's own (currency_digits).
_MONEY_PATTERN = "#,##0.00 ¤¤"


def currency_exponent(currency: str) -> int:
    """Digits of the currency's minor unit from CLDR (USD 2, JPY 0, KWD and BHD 3, YER 0). Stored amounts
    are counted in this unit, so it must never change for a currency that already has amounts."""
    return get_currency_precision(currency.upper())


def round_minor(value: Decimal | int) -> int:
    """Round an amount already expressed in minor units (possibly fractional) half-up to an int."""
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_money(amount: int, currency: str, *, language: str | None = None) -> str:
    """The one formatter of amounts people read: minor units shown with the currency's CLDR digits, in the
    reader's locale (grouping, decimal sign and digits: "1,234.50 USD", "١٬٢٣٤٫٥٠ USD" for ar_YE).
    `language` defaults to the active one. Templates use the `money` filters (core.templatetags)."""
    major = to_major(amount, currency)
    locale = babel_locale(language=language)
    text = format_currency(major, currency.upper(), format=_MONEY_PATTERN, locale=locale,
                           currency_digits=True, numbering_system="default")
    return localize_digits(text, locale=locale)


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
        raise ValueError(_("%(amount)s has more decimals than %(currency)s allows.")
                         % {"amount": amount, "currency": currency.upper()})
    return int(minor)


# `format_money` evaluated when the text is rendered, in the language active then: email contexts are
# built before notifications renders them in the customer's language.
format_money_lazy = lazy(format_money, str)
