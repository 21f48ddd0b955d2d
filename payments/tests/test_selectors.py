from decimal import Decimal

import pytest

from billing_project.audit import Actor
from payments.models import Invoice, InvoiceLine, InvoiceLineKind, PaymentMethod
from payments.selectors import invoice_list, invoice_total_mismatches, payment_list
from payments.services import LineSpec, invoice_create, invoice_finalize, invoice_mark_paid, payment_record_manual
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


def open_invoice(customer, amount):
    invoice = invoice_create(customer=customer, lines=[LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="x",
                                                                unit_amount=Decimal(amount))])
    return invoice_finalize(invoice=invoice, actor=ACTOR)


def test_lists_are_scoped_to_the_customer():
    mine, theirs = CustomerFactory(), CustomerFactory()
    invoice = open_invoice(mine, 100)
    open_invoice(theirs, 100)
    payment_record_manual(customer=mine, amount=100, method=PaymentMethod.CASH, actor=ACTOR, invoice=invoice)

    assert list(invoice_list(customer=mine)) == [invoice]
    assert [p.invoice for p in payment_list(customer=mine)] == [invoice]
    assert invoice_list().count() == 2


def test_consistent_invoices_verify_including_staff_mark_paid():
    customer = CustomerFactory()
    paid = open_invoice(customer, 500)
    payment_record_manual(customer=customer, amount=500, method=PaymentMethod.CHECK, actor=ACTOR, invoice=paid)
    invoice_mark_paid(invoice=open_invoice(customer, 300), actor=ACTOR)
    open_invoice(customer, 0)

    assert invoice_total_mismatches() == []


def test_mismatches_find_tampered_totals_and_amounts_paid():
    customer = CustomerFactory()
    invoice = open_invoice(customer, 500)
    payment_record_manual(customer=customer, amount=200, method=PaymentMethod.CASH, actor=ACTOR, invoice=invoice)

    InvoiceLine.objects.filter(invoice=invoice).update(amount=450)
    Invoice.objects.filter(pk=invoice.pk).update(amount_paid=250)

    kinds = {m["kind"]: m for m in invoice_total_mismatches()}
    assert kinds["invoice_total"]["lines"] == 450
    assert kinds["invoice_amount_paid"] == {"kind": "invoice_amount_paid", "invoice_id": invoice.pk,
                                            "number": invoice.number, "stored": 250, "payments": 200}
    assert kinds["invoice_amount_due"]["stored"] == 300
