"""Amounts, numbers and dates in the reader's locale from CLDR (Babel), and names in two scripts."""

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from django.template import Context, Template
from django.utils import translation

from core.l10n import format_date, format_number, localized_name
from core.money import currency_exponent, format_money


@pytest.mark.parametrize(("currency", "exponent"), [("USD", 2), ("JPY", 0), ("KWD", 3), ("BHD", 3), ("SAR", 2),
                                                   ("YER", 0), ("EUR", 2)])
def test_minor_units_come_from_cldr(currency, exponent):
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(("amount", "currency", "english", "arabic"), [
    (123456789, "USD", "1,234,567.89 USD", "١٬٢٣٤٬٥٦٧٫٨٩ USD"),
    (500, "JPY", "500 JPY", "٥٠٠ JPY"),
    (1234, "KWD", "1.234 KWD", "١٫٢٣٤ KWD"),
    (1005, "BHD", "1.005 BHD", "١٫٠٠٥ BHD"),
    (150000, "YER", "150,000 YER", "١٥٠٬٠٠٠ YER"),
    (4999, "SAR", "49.99 SAR", "٤٩٫٩٩ SAR"),
])
def test_one_function_formats_money_in_each_language(amount, currency, english, arabic):
    assert format_money(amount, currency, language="en") == english
    assert format_money(amount, currency, language="ar") == arabic
    with translation.override("ar"):
        assert format_money(amount, currency) == arabic  # the active language by default


def test_the_locale_decides_the_digits(settings):
    settings.FORMAT_LOCALES = {**settings.FORMAT_LOCALES, "ar": "ar_AE"}  # the UAE writes Latin digits
    assert format_money(4999, "SAR", language="ar") == "49.99 SAR"
    assert format_number(12345, language="ar") == "12,345"


def test_dates_and_numbers_follow_the_locale():
    day = date(2026, 12, 1)
    assert format_date(day, language="en") == "Dec 1, 2026"
    assert format_date(day, language="ar", style="long") == "١ ديسمبر ٢٠٢٦"
    assert format_date(datetime(2026, 12, 1, 23, 0, tzinfo=UTC), language="en") == "Dec 1, 2026"
    assert format_date(None) == ""
    assert format_number(12345, language="ar") == "١٢٬٣٤٥"


def test_a_name_in_two_scripts_shows_the_one_for_the_language_and_falls_back_to_the_other():
    both = SimpleNamespace(name="Saba Trading", name_ar="سبأ للتجارة")
    latin_only = SimpleNamespace(name="Aden Port", name_ar="")
    arabic_only = SimpleNamespace(name="", name_ar="مؤسسة حضرموت")
    assert localized_name(both, language="ar") == "سبأ للتجارة"
    assert localized_name(both, language="en") == "Saba Trading"
    assert localized_name(latin_only, language="ar") == "Aden Port"
    assert localized_name(arabic_only, language="en") == "مؤسسة حضرموت"


def test_template_filters_isolate_amounts_and_codes_only_in_right_to_left_text():
    template = Template("{% load billing_l10n %}"
                        "{{ amount|money:'USD' }}|{{ number|ltr }}|{{ amount|money_text:'USD' }}")
    with translation.override("ar"):
        html = template.render(Context({"amount": 999, "number": "INV-2026-000001"}))
    assert html == ('<bdi class="money" dir="ltr">٩٫٩٩ USD</bdi>|<bdi dir="ltr">INV-2026-000001</bdi>|'
                    "\u2066٩٫٩٩ USD\u2069")
    with translation.override("en"):
        html = template.render(Context({"amount": 999, "number": "INV-2026-000001"}))
    assert html == '<bdi class="money" dir="ltr">9.99 USD</bdi>|INV-2026-000001|9.99 USD'
