import pytest
from django.http import QueryDict
from rest_framework.exceptions import ValidationError

from core.safe_input import BIGINT_MAX
from credits.api.serializers import CreditDebitSerializer, credit_debit_validated

BODIES = [
    {"amount": 1}, {"amount": 5, "reason": "report export"}, {"amount": 5, "reason": ""},
    {"amount": 5, "idempotency_key": "job-1"}, {"amount": 5, "idempotency_key": None},
    {"amount": 5, "customer": 7}, {"amount": BIGINT_MAX, "customer": BIGINT_MAX}, {"amount": 5, "extra": [1]},
    {"amount": 5, "reason": "r" * 500, "idempotency_key": "k" * 200},
    # What the serializer converts: the fast path must hand these to it, not take them as they are.
    {"amount": "5"}, {"amount": 5.0}, {"amount": True}, {"amount": 5, "reason": "  padded  "},
    {"amount": 5, "reason": 12}, {"amount": 5, "idempotency_key": " k"}, {"amount": 5, "customer": "7"},
    {"amount": 5, "reason": "تصدير تقرير"}, {"amount": 5, "reason": "tab\tinside"},
    # What the serializer refuses.
    {}, {"amount": 0}, {"amount": -3}, {"amount": BIGINT_MAX + 1}, {"amount": None}, {"amount": "five"},
    {"amount": 5, "reason": None}, {"amount": 5, "reason": "r" * 501}, {"amount": 5, "idempotency_key": ""},
    {"amount": 5, "idempotency_key": "   "}, {"amount": 5, "idempotency_key": "k" * 201},
    {"amount": 5, "reason": "nul\x00inside"}, {"amount": 5, "customer": 0}, {"amount": 5, "customer": None},
    {"amount": 5, "customer": BIGINT_MAX + 1}, {"amount": [5]}, {"amount": {"n": 5}},
    [], "amount", None,
]


def _serializer_outcome(data):
    serializer = CreditDebitSerializer(data=data)
    if serializer.is_valid():
        return "valid", dict(serializer.validated_data)
    return "invalid", serializer.errors


def _fast_outcome(data):
    try:
        return "valid", dict(credit_debit_validated(data))
    except ValidationError as error:
        return "invalid", error.detail


@pytest.mark.parametrize("body", BODIES, ids=repr)
def test_the_debits_validation_gives_what_the_serializer_gives(body):
    expected = _serializer_outcome(body)

    outcome = _fast_outcome(body)

    assert outcome == expected
    if outcome[0] == "valid":
        assert {k: type(v) for k, v in outcome[1].items()} == {k: type(v) for k, v in expected[1].items()}


def test_a_form_body_goes_through_the_serializer():
    body = QueryDict("amount=5&reason=form")

    assert credit_debit_validated(body) == {"amount": 5, "reason": "form", "idempotency_key": None}
