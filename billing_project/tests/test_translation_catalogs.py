"""The translation catalogs under locale/: Arabic complete, and the committed .mo files compiled from
the .po files as they are (a .po edited without `compilemessages` fails here)."""

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings

LOCALE = Path(settings.BASE_DIR) / "locale"
PLACEHOLDER = re.compile(r"%\(\w+\)s|%s|%d")


def _catalog(language: str):
    with open(LOCALE / language / "LC_MESSAGES" / "django.po", "rb") as po:
        return read_po(po)


# Names of companies stay in Latin letters in Arabic text, as they write them.
PROPER_NAMES = {"Stripe", "PayPal", "Lemon Squeezy"}


def test_every_arabic_entry_is_translated_and_none_is_fuzzy():
    catalog = _catalog("ar")
    entries = [m for m in catalog if m.id]
    assert len(entries) > 250
    untranslated = [m.id for m in entries if not all(isinstance(m.string, tuple) and m.string or [m.string])
                    or (isinstance(m.string, tuple) and not all(m.string))]
    fuzzy = [m.id for m in entries if m.fuzzy]
    copied = [m.id for m in entries if not isinstance(m.id, tuple) and m.string == m.id
              and re.search(r"[a-z]{3}", PLACEHOLDER.sub("", m.id)) and m.id not in PROPER_NAMES]
    assert (untranslated, fuzzy, copied) == ([], [], [])


def test_arabic_translations_keep_every_placeholder_and_tag():
    for message in _catalog("ar"):
        if not message.id:
            continue
        source = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings[-1:]:  # the general plural form keeps them all; 0/1/2 may spell the count
            assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(source)), source
            assert sorted(re.findall(r"</?\w+", text)) == sorted(re.findall(r"</?\w+", source)), source


def test_arabic_uses_the_six_plural_forms():
    text = (LOCALE / "ar" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    assert "nplurals=6;" in text


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_committed_mo_file_matches_its_po_file(language):
    with open(LOCALE / language / "LC_MESSAGES" / "django.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)._catalog
    expected = {}
    for message in _catalog(language):
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, tuple):
            for index, form in enumerate(message.string):
                if form:
                    expected[(message.id[0], index)] = form
        elif message.string:
            expected[message.id] = message.string
    compiled.pop("", None)  # the header
    assert compiled == expected
