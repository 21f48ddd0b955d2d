"""The bulk issuing path (payments.billing.invoicing) and `invoice_create` + `invoice_finalize` issue the
same invoice for the same lines: one number format and counter, one total and amount due, one due date
and first collection attempt, one pair of audit rows."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.audit import Actor
from payments.billing.invoicing import InvoiceDraft, invoices_issue
from payments.models import BillingReason, Invoice, InvoiceLineKind, InvoiceStatusChange
from payments.services import LineSpec, invoice_create, invoice_finalize, invoice_number_format
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 4, 1, 9, tzinfo=UTC)
ACTOR = Actor.system("test")


def _line(unit_amount: str, quantity: str = "1") -> LineSpec:
    return LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="line", unit_amount=Decimal(unit_amount),
                    quantity=Decimal(quantity))


def _issue_one_by_one(customer, lines: list[LineSpec]) -> Invoice:
    invoice = invoice_create(customer=customer, lines=lines, billing_reason=BillingReason.MANUAL)
    return invoice_finalize(invoice=invoice, actor=ACTOR, now=NOW)


def _issue_in_bulk(customer, lines: list[LineSpec]) -> Invoice:
    draft = InvoiceDraft(customer_id=customer.pk, currency=customer.currency, subscription_id=None,
                         billing_reason=BillingReason.MANUAL, period_start=None, period_end=None, lines=lines)
    [issued] = invoices_issue(drafts=[draft], actor=ACTOR, now=NOW)
    return Invoice.objects.get(pk=issued.pk)


def _terms(invoice: Invoice) -> tuple:
    changes = InvoiceStatusChange.objects.filter(invoice=invoice).order_by("id")
    return (invoice.status, invoice.subtotal, invoice.total, invoice.amount_paid, invoice.amount_due,
            invoice.issued_at, invoice.due_date, invoice.next_attempt_at, invoice.paid_at,
            [(c.from_status, c.to_status, c.reason) for c in changes],
            sorted(invoice.lines.values_list("amount", flat=True)))


@pytest.mark.parametrize("lines", [
    [_line("1000")],
    [_line("0")],
    [_line("500"), _line("-800")],               # a credit larger than the charges: nothing owed, no cash back
    [_line("-300")],
    [_line("0.5", "75.5"), _line("2000")],      # a usage line rounded half-up once
    [_line("0.004", "1")],                      # rounds to zero: settled at issue
])
def test_both_issuing_paths_issue_the_same_invoice_for_the_same_lines(lines, settings):
    settings.INVOICE_DAYS_UNTIL_DUE = 9
    customer = CustomerFactory()

    one = _issue_one_by_one(customer, lines)
    bulk = _issue_in_bulk(customer, lines)

    assert _terms(one) == _terms(bulk)
    assert one.due_date == NOW + timedelta(days=9)
    assert one.total == max(one.subtotal, 0) and one.amount_due == one.total - one.amount_paid


def test_both_issuing_paths_share_one_number_format_and_one_gapless_counter():
    customer = CustomerFactory()

    numbers = [_issue_one_by_one(customer, [_line("100")]).number, _issue_in_bulk(customer, [_line("100")]).number,
               _issue_one_by_one(customer, [_line("100")]).number]

    assert numbers == [invoice_number_format(year=2025, sequence=n) for n in (1, 2, 3)]
    assert numbers == ["INV-2025-000001", "INV-2025-000002", "INV-2025-000003"]


@pytest.mark.parametrize(("lines", "status", "attempts", "next_attempt_at"), [
    ([_line("1000")], "open", 1, NOW + timedelta(days=1)),
    ([_line("0")], "paid", 0, None),  # nothing due: settled at issue, no attempt to record
])
def test_a_first_attempt_settled_by_the_issuing_batch_is_written_with_the_invoice(lines, status, attempts,
                                                                                  next_attempt_at):
    from payments.billing.invoicing import FirstAttempt

    customer = CustomerFactory()
    draft = InvoiceDraft(customer_id=customer.pk, currency=customer.currency, subscription_id=None,
                         billing_reason=BillingReason.MANUAL, period_start=None, period_end=None, lines=lines,
                         first_attempt=FirstAttempt(attempt_count=1, next_attempt_at=NOW + timedelta(days=1)))
    [issued] = invoices_issue(drafts=[draft], actor=ACTOR, now=NOW)
    invoice = Invoice.objects.get(pk=issued.pk)
    assert (invoice.status, invoice.attempt_count, invoice.next_attempt_at) == (status, attempts, next_attempt_at)
    assert issued.number == invoice.number == "INV-2025-000001" and issued.status == status


def test_a_batch_numbers_its_invoices_in_id_order_after_writing_them_as_drafts():
    customer = CustomerFactory()
    drafts = [InvoiceDraft(customer_id=customer.pk, currency=customer.currency, subscription_id=None,
                           billing_reason=BillingReason.MANUAL, period_start=None, period_end=None,
                           lines=[_line(amount)]) for amount in ("100", "0", "300")]
    from payments.billing.invoicing import invoices_issuing

    with invoices_issuing(drafts=drafts, actor=ACTOR, now=NOW) as issued:
        # Inside the batch: written, not yet numbered (the counter is not taken until the block ends).
        assert list(Invoice.objects.order_by("pk").values_list("status", "number")) == [("draft", None)] * 3
    assert [(i.number, i.status) for i in issued] == [
        ("INV-2025-000001", "open"), ("INV-2025-000002", "paid"), ("INV-2025-000003", "open")]
    assert list(Invoice.objects.order_by("pk").values_list("number", "status")) == [
        (i.number, i.status) for i in issued]
