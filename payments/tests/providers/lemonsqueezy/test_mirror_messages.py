"""A mirror refusal staff read in the inbox names the variant in the reader's language; English unchanged."""

import re

import pytest
from django.utils import translation

from payments.providers.lemonsqueezy.mirror import MirrorRefused, plan_for_variant

ARABIC = re.compile("[\u0600-\u06ff]")


def _refusal(variant_id: str, language: str) -> MirrorRefused:
    with translation.override(language), pytest.raises(MirrorRefused) as caught:
        plan_for_variant(variant_id=variant_id)
    return caught.value


@pytest.mark.django_db
def test_an_unmapped_lemon_squeezy_variant_is_refused_in_arabic_with_its_id():
    english = _refusal("v-77", "en")
    arabic = _refusal("v-77", "ar")
    assert str(english) == ("Lemon Squeezy variant v-77 is not mapped to a plan (ProviderPlanPrice); map it, then "
                            "replay the event")
    assert ARABIC.search(str(arabic)) and "v-77" in str(arabic) and "Lemon Squeezy" in str(arabic)
