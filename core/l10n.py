"""The reader's locale for figures: which CLDR locale a language formats numbers and dates with, the
digits that locale writes, and dates formatted by Babel.

Django's own number and date localization knows one format per language; CLDR (through Babel) knows the
region's conventions too, including whether it writes Arabic-Indic or Latin digits. Money is formatted
in core.money on top of this module.
"""

from datetime import date, datetime
from decimal import Decimal

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_decimal as babel_format_decimal
from django.conf import settings
from django.utils import timezone, translation

# The digit shapes of the numeric CLDR numbering systems a supported locale may name (Unicode's digits:
# Babel knows which system a locale uses but formats with Latin digits only).
_DIGITS = {
    "latn": "0123456789",
    "arab": "٠١٢٣٤٥٦٧٨٩",
    "arabext": "۰۱۲۳۴۵۶۷۸۹",
}

# Unicode's isolates: LEFT-TO-RIGHT ISOLATE ... POP DIRECTIONAL ISOLATE keep an amount, a currency code or
# an invoice number one left-to-right unit inside right-to-left plain text (emails' text parts, PDFs).
LRI = "\u2066"
PDI = "\u2069"


def babel_locale(*, language: str | None = None) -> Locale:
    """The CLDR locale that formats figures for `language` (the active one by default):
    settings.FORMAT_LOCALES maps each of LANGUAGES to a region, whose CLDR data decides the digits."""
    code = (language or translation.get_language() or settings.LANGUAGE_CODE).lower()
    base = code.split("-")[0]
    name = settings.FORMAT_LOCALES.get(code) or settings.FORMAT_LOCALES.get(base) or base
    return Locale.parse(name.replace("-", "_"))


def localize_digits(text: str, *, locale: Locale) -> str:
    """Latin digits in `text` written in the locale's default numbering system (CLDR)."""
    digits = _DIGITS.get(locale.default_numbering_system, _DIGITS["latn"])
    if digits == _DIGITS["latn"]:
        return text
    return text.translate(str.maketrans(_DIGITS["latn"], digits))


def isolate_ltr(text: str) -> str:
    """`text` as one left-to-right unit in plain text whose direction may be right to left."""
    return f"{LRI}{text}{PDI}"


def format_date(value: date | datetime | None, *, language: str | None = None, style: str = "medium") -> str:
    """A date as the reader's locale writes it ("Dec 1, 2026", "٠١‏/١٢‏/٢٠٢٦"); datetimes are shown in
    TIME_ZONE's calendar day. Empty for None, so templates need no guard."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    locale = babel_locale(language=language)
    return localize_digits(babel_format_date(value, format=style, locale=locale), locale=locale)


def format_datetime(value: datetime | None, *, language: str | None = None, style: str = "medium") -> str:
    """A moment as the reader's locale writes it, in TIME_ZONE."""
    if value is None:
        return ""
    locale = babel_locale(language=language)
    text = babel_format_datetime(timezone.localtime(value) if timezone.is_aware(value) else value,
                                 format=style, locale=locale, tzinfo=timezone.get_current_timezone())
    return localize_digits(text, locale=locale)


def localized_name(obj, *, language: str | None = None) -> str:
    """The name of a row that carries one in Latin script (`name`) and one in Arabic script (`name_ar`):
    the one for `language` (the active one by default), else the other, so no document shows a blank."""
    latin = getattr(obj, "name", "") or ""
    arabic = getattr(obj, "name_ar", "") or ""
    code = (language or translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    if code == "ar":
        return arabic or latin
    return latin or arabic


def format_number(value: int | float | Decimal, *, language: str | None = None) -> str:
    """A count or quantity with the reader's grouping, decimal sign and digits ("12,345", "١٢٬٣٤٥"), every
    decimal kept (a usage price of 0.0005 minor units stays 0.0005)."""
    locale = babel_locale(language=language)
    text = babel_format_decimal(value, locale=locale, numbering_system="default", decimal_quantization=False)
    return localize_digits(text, locale=locale)
