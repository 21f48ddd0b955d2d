"""Template filters over core.money and core.l10n, so every page, email and admin screen formats
amounts and dates with the same function in the reader's language."""

from decimal import Decimal, InvalidOperation

from django import template
from django.utils.html import format_html
from django.utils.translation import get_language_bidi

from core.l10n import format_date, format_datetime, format_number, isolate_ltr, localized_name
from core.money import format_money

register = template.Library()


@register.filter
def money(amount, currency):
    """HTML: `{{ invoice.total|money:invoice.currency }}`, isolated from the bidi flow of the page."""
    if amount is None or amount == "":
        return ""
    return format_html('<bdi class="money" dir="ltr">{}</bdi>', format_money(int(amount), str(currency)))


@register.filter
def money_text(amount, currency):
    """Plain text (emails' text parts): the amount between Unicode isolates, readable in Arabic lines."""
    if amount is None or amount == "":
        return ""
    text = format_money(int(amount), str(currency))
    return isolate_ltr(text) if get_language_bidi() else text


@register.filter
def ltr(value):
    """HTML: a code or number (invoice number, currency, amount) kept left to right inside right-to-left
    text; left-to-right pages need no isolation, so they get the value as it is."""
    if not get_language_bidi():
        return value
    return format_html('<bdi dir="ltr">{}</bdi>', value)


@register.filter
def ltr_text(value):
    """Plain text: likewise, with Unicode isolates (right-to-left languages only)."""
    return isolate_ltr(str(value)) if get_language_bidi() else value


@register.filter
def l10n_date(value, style="medium"):
    return format_date(value, style=style)


@register.filter
def l10n_datetime(value, style="medium"):
    return format_datetime(value, style=style)


@register.filter
def l10n_name(obj):
    """`{{ customer|l10n_name }}`: the Arabic or Latin name for the reader's language, the other if empty."""
    return localized_name(obj)


@register.filter
def l10n_number(value):
    """A count or quantity in the reader's locale (replaces humanize's intcomma, which knows no CLDR)."""
    if value is None or value == "":
        return ""
    try:
        number = value if isinstance(value, int | float | Decimal) else Decimal(str(value))
    except InvalidOperation:
        return value  # not a number: shown as it is
    return format_number(number)
