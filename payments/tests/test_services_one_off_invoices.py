"""payments.services.one_off_invoices: a draft with hand-written lines, the same refusals for every door."""

from decimal import Decimal

import pytest

from core.exceptions import InvalidOperation
from core.safe_input import BIGINT_MAX
from payments.models import BillingReason, Invoice, InvoiceLineKind
from payments.services import OneOffLine, invoice_finalize, invoice_one_off_check, invoice_one_off_create
from payments.tests.services_support import ACTOR, IS, NOW
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _line(quantity="1", unit_amount=1000, description="Setup fee") -> OneOffLine:
    return OneOffLine(description=description, quantity=Decimal(quantity), unit_amount=unit_amount)


def test_a_one_off_invoice_is_a_manual_draft_whose_lines_are_rounded_once_half_up():
    customer = CustomerFactory(currency="EUR")

    invoice = invoice_one_off_create(customer=customer, currency="eur", note="  Merci!  ",
                                     lines=[_line("1", 25000), _line("0.333333", 100, " Support minutes ")])

    assert (invoice.status, invoice.billing_reason, invoice.currency, invoice.note, invoice.number) == (
        IS.DRAFT, BillingReason.MANUAL, "EUR", "Merci!", None)
    # 0.333333 x 100 = 33.3333 -> 33; the total is the sum of the rounded lines.
    assert [(line.kind, line.description, line.amount) for line in invoice.lines.order_by("id")] == [
        (InvoiceLineKind.ADJUSTMENT, "Setup fee", 25000), (InvoiceLineKind.ADJUSTMENT, "Support minutes", 33)]
    assert (invoice.subtotal, invoice.total, invoice.amount_due) == (25033, 25033, 25033)


def test_finalizing_it_issues_it_like_any_invoice():
    customer = CustomerFactory()
    draft = invoice_one_off_create(customer=customer, currency="USD", lines=[_line()])
    issued = invoice_finalize(invoice=draft, actor=ACTOR, now=NOW)
    assert (issued.status, issued.number, issued.next_attempt_at) == (IS.OPEN, "INV-2025-000001", NOW)


@pytest.mark.parametrize(("currency", "lines", "field", "code"), [
    ("EUR", [_line()], "currency", "currency_mismatch"),
    ("USD", [], "lines", "invalid_lines"),
    ("USD", [_line()] * 101, "lines", "invalid_lines"),
    ("USD", [_line(), _line(quantity="0")], "lines", "invalid_lines"),
    ("USD", [_line(unit_amount=-1)], "lines", "invalid_lines"),
    ("USD", [_line(description="   ")], "lines", "invalid_lines"),
    ("USD", [_line(quantity="99999999999999", unit_amount=2**62)], "lines", "invalid_lines"),
    ("USD", [_line(unit_amount=BIGINT_MAX), _line(unit_amount=1)], "lines", "invalid_lines"),
    ("USD", [_line(unit_amount=0)], "lines", "nothing_to_invoice"),
])
def test_what_an_invoice_cannot_be_is_refused_naming_the_field(currency, lines, field, code):
    customer = CustomerFactory()
    with pytest.raises(InvalidOperation) as refused:
        invoice_one_off_create(customer=customer, currency=currency, lines=lines)
    assert (refused.value.code, list(refused.value.extra["fields"])) == (code, [field])
    assert not Invoice.objects.exists()


def test_line_problems_are_reported_by_index():
    with pytest.raises(InvalidOperation) as refused:
        invoice_one_off_check(customer=CustomerFactory(), currency="USD",
                              lines=[_line(), _line(quantity="-2"), _line(description="")])
    assert refused.value.extra["fields"] == {"lines": {"1": ["The quantity must be positive."],
                                                       "2": ["A line needs a description."]}}
