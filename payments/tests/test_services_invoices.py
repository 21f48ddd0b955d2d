"""payments.services.invoices: line amounts and totals, finalizing and numbering, void and mark paid."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from core.audit import Actor
from core.exceptions import IllegalTransition
from credits.selectors import credit_balance_get
from payments.models import Invoice, InvoiceLineKind, InvoiceNumberSequence, InvoiceStatusChange, PaymentMethod
from payments.providers.manual.services import payment_record_manual
from payments.services import (
    ALLOWED_INVOICE_TRANSITIONS,
    invoice_create,
    invoice_finalize,
    invoice_line_amount,
    invoice_lock,
    invoice_mark_paid,
    invoice_transition,
    invoice_void,
    subscription_start,
)
from payments.tests.factories import InvoiceFactory
from payments.tests.services_support import ACTOR, IS, NOW, S, line, open_invoice, statuses
from subscriptions.tests.factories import CustomerFactory, PlanFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------------------------------ amounts


@pytest.mark.parametrize(("quantity", "unit_amount", "amount"), [
    ("1", "999", 999),
    ("3", "0.5", 2),            # 1.5 -> 2
    ("1", "0.5", 1),
    ("12345", "0.04", 494),     # 493.8
    ("0.5", "-999", -500),      # a credit of -499.5 rounds away from zero too
    ("0.5", "2999", 1500),
    ("0", "999", 0),
])
def test_line_amount_is_rounded_once_half_up(quantity, unit_amount, amount):
    assert invoice_line_amount(quantity=Decimal(quantity), unit_amount=Decimal(unit_amount)) == amount


def test_invoice_create_stores_lines_and_totals():
    customer = CustomerFactory(currency="EUR")

    invoice = invoice_create(customer=customer, lines=[line(999), line("0.04", 12345, InvoiceLineKind.USAGE)])

    assert (invoice.status, invoice.number, invoice.currency) == (IS.DRAFT, None, "EUR")
    assert list(invoice.lines.values_list("amount", flat=True)) == [999, 494]
    assert (invoice.subtotal, invoice.total, invoice.amount_due) == (1493, 1493, 1493)


def test_a_credit_larger_than_the_charges_makes_nothing_due():
    invoice = invoice_create(customer=CustomerFactory(), lines=[line(500), line(-800)])

    assert (invoice.subtotal, invoice.total, invoice.amount_due) == (-300, 0, 0)


# ------------------------------------------------------------------------------------------ finalize and numbers


def test_finalize_numbers_opens_and_audits(settings):
    settings.INVOICE_DAYS_UNTIL_DUE = 14
    staff = StaffUserFactory()
    invoice = invoice_create(customer=CustomerFactory(), lines=[line(1000)])

    invoice = invoice_finalize(invoice=invoice, actor=Actor.of_user(staff), now=NOW)

    assert (invoice.status, invoice.number) == (IS.OPEN, "INV-2025-000001")
    assert invoice.issued_at == invoice.next_attempt_at == NOW
    assert invoice.due_date == NOW + timedelta(days=14)
    change = InvoiceStatusChange.objects.get(invoice=invoice)
    assert (change.from_status, change.to_status, change.reason, change.actor) == (IS.DRAFT, IS.OPEN, "finalized",
                                                                                   staff)


def test_finalizing_an_invoice_with_nothing_due_pays_it():
    invoice = invoice_create(customer=CustomerFactory(), lines=[line(0)])

    invoice = invoice_finalize(invoice=invoice, actor=ACTOR, now=NOW)

    assert invoice.status == IS.PAID
    assert invoice.paid_at == NOW
    assert invoice.next_attempt_at is None
    assert statuses(invoice) == [(IS.DRAFT, IS.OPEN), (IS.OPEN, IS.PAID)]


def test_invoice_numbers_are_gapless_per_year():
    customer = CustomerFactory()

    numbers = [open_invoice(customer, now=NOW).number for _ in range(3)]
    next_year = open_invoice(customer, now=datetime(2026, 1, 1, tzinfo=UTC)).number

    assert numbers == ["INV-2025-000001", "INV-2025-000002", "INV-2025-000003"]
    assert next_year == "INV-2026-000001"
    assert dict(InvoiceNumberSequence.objects.values_list("year", "last_number")) == {2025: 3, 2026: 1}


def test_a_rolled_back_finalization_leaves_no_gap():
    customer = CustomerFactory()
    open_invoice(customer)
    doomed = invoice_create(customer=customer, lines=[line(100)])

    with pytest.raises(RuntimeError), transaction.atomic():
        assert invoice_finalize(invoice=doomed, actor=ACTOR, now=NOW).number == "INV-2025-000002"
        raise RuntimeError("the surrounding work failed")

    doomed.refresh_from_db()
    assert (doomed.status, doomed.number) == (IS.DRAFT, None)
    assert open_invoice(customer).number == "INV-2025-000002"


def test_finalizing_twice_is_refused_and_burns_no_number():
    invoice = open_invoice()

    with pytest.raises(IllegalTransition):
        invoice_finalize(invoice=invoice, actor=ACTOR, now=NOW + timedelta(days=1))

    invoice.refresh_from_db()
    assert (invoice.number, invoice.issued_at) == ("INV-2025-000001", NOW)
    assert InvoiceNumberSequence.objects.get(year=2025).last_number == 1


@pytest.mark.parametrize(("from_status", "to_status"), [
    (f, t) for f in IS.values for t in IS.values if t not in ALLOWED_INVOICE_TRANSITIONS[f]
])
def test_illegal_invoice_transitions_are_refused_and_change_nothing(from_status, to_status):
    invoice = InvoiceFactory(status=from_status, number=None if from_status == IS.DRAFT else "INV-X")

    with pytest.raises(IllegalTransition):
        invoice_transition(invoice=invoice_lock(invoice_id=invoice.pk), to_status=to_status, actor=ACTOR)

    invoice.refresh_from_db()
    assert invoice.status == from_status
    assert statuses(invoice) == []


# ------------------------------------------------------------------------------------------ void and mark paid


def test_void_an_open_invoice():
    invoice = open_invoice()

    invoice_void(invoice=invoice, actor=ACTOR, reason="issued in error", now=NOW + timedelta(hours=1))

    invoice.refresh_from_db()
    assert (invoice.status, invoice.voided_at, invoice.next_attempt_at) == (IS.VOID, NOW + timedelta(hours=1), None)
    assert statuses(invoice)[-1] == (IS.OPEN, IS.VOID)
    assert InvoiceStatusChange.objects.filter(invoice=invoice).first().reason == "issued in error"


def test_voiding_a_draft_discards_it_without_taking_a_number():
    draft = invoice_create(customer=CustomerFactory(), lines=[line(1000)])
    numbered_before = InvoiceNumberSequence.objects.filter(year=NOW.year).values_list("last_number", flat=True).first()

    invoice_void(invoice=draft, actor=ACTOR, reason="drafted in error", now=NOW)

    draft.refresh_from_db()
    assert (draft.status, draft.number, draft.issued_at) == (IS.VOID, None, None)
    assert statuses(draft)[-1] == (IS.DRAFT, IS.VOID)
    assert InvoiceNumberSequence.objects.filter(year=NOW.year).values_list(
        "last_number", flat=True).first() == numbered_before


def test_void_is_refused_for_paid_invoices_and_invoices_with_payments():
    partly_paid = open_invoice(amount=1000)
    payment_record_manual(customer=partly_paid.customer, amount=400, method=PaymentMethod.CASH, actor=ACTOR,
                          invoice=partly_paid)
    paid = open_invoice(amount=0)

    with pytest.raises(IllegalTransition) as with_payments:
        invoice_void(invoice=partly_paid, actor=ACTOR)
    with pytest.raises(IllegalTransition):
        invoice_void(invoice=paid, actor=ACTOR)

    assert with_payments.value.code == "invoice_has_payments"
    assert Invoice.objects.get(pk=partly_paid.pk).status == IS.OPEN
    assert Invoice.objects.get(pk=paid.pk).status == IS.PAID


def test_mark_paid_settles_and_activates_an_incomplete_subscription():
    plan = PlanFactory(amount=2999, trial_days=0, credits_per_period=1000)
    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=ACTOR, now=NOW)

    invoice_mark_paid(invoice=invoice, actor=ACTOR, reason="paid by wire, reference 88", now=NOW)

    invoice.refresh_from_db()
    subscription.refresh_from_db()
    assert (invoice.status, invoice.amount_due, invoice.paid_at) == (IS.PAID, 0, NOW)
    assert subscription.status == S.ACTIVE
    assert credit_balance_get(customer=subscription.customer) == 1000


def test_mark_paid_on_a_void_invoice_is_refused_and_changes_nothing():
    invoice = open_invoice(amount=700)
    invoice_void(invoice=invoice, actor=ACTOR)

    with pytest.raises(IllegalTransition):
        invoice_mark_paid(invoice=invoice, actor=ACTOR)

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == (IS.VOID, 700)


