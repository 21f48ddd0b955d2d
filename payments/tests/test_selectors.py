"""The dashboard's figures: what each one counts, and that each costs one query whatever the data."""

from decimal import Decimal

import pytest

from core.audit import Actor
from credits.selectors import CreditsOutstanding
from payments.models import Invoice, InvoiceLine, InvoiceLineKind, PaymentMethod
from payments.providers.manual.services import payment_record_manual
from payments.selectors import (
    Collected,
    Receivables,
    dashboard_figures,
    invoice_list,
    invoice_total_mismatches,
    payment_list,
)
from payments.services import LineSpec, invoice_create, invoice_finalize, invoice_mark_paid
from payments.tests.books import NOW, build_books
from subscriptions.tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_dashboard_figures_match_the_books():
    build_books()

    figures = dashboard_figures(now=NOW)

    # 1000 monthly + 12000 yearly / 12 in USD; 3000 every three months in EUR. Trials, incomplete,
    # paused and canceled subscriptions bring nothing.
    assert figures.mrr == {"EUR": 1000, "USD": 2000}
    assert figures.subscriptions_by_status == {"incomplete": 1, "trialing": 1, "active": 2, "past_due": 1,
                                               "paused": 1, "canceled": 2}
    assert figures.receivables == [
        Receivables(currency="EUR", open_count=1, open_amount=700, past_due_count=1, past_due_amount=700),
        Receivables(currency="USD", open_count=2, open_amount=4000, past_due_count=1, past_due_amount=1500),
    ]
    assert figures.collected == [
        Collected(currency="EUR", count=1, gross=800, refunded=800),
        Collected(currency="USD", count=2, gross=8000, refunded=1000),
    ]
    assert figures.collected[1].net == 7000
    assert figures.credits == CreditsOutstanding(credits=300, customers=1)


def test_dashboard_figures_of_empty_books_are_zero():
    figures = dashboard_figures(now=NOW)

    assert figures.mrr == {}
    assert set(figures.subscriptions_by_status.values()) == {0}
    assert (figures.receivables, figures.collected) == ([], [])
    assert figures.credits == CreditsOutstanding(credits=0, customers=0)


def test_monthly_recurring_revenue_rounds_once_per_currency():
    plan = PlanFactory(code="odd-yearly", amount=1001, interval="year")
    SubscriptionFactory(plan=plan, customer__user=None)
    SubscriptionFactory(plan=plan, customer__user=None)

    # 2 x 1001 / 12 = 166.83: rounded once to 167, not 83 + 83 = 166.
    assert dashboard_figures(now=NOW).mrr == {"USD": 167}


def test_dashboard_figures_take_five_queries_whatever_the_data(django_assert_num_queries):
    with django_assert_num_queries(5):
        dashboard_figures(now=NOW)
    build_books()

    with django_assert_num_queries(5):
        dashboard_figures(now=NOW)


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
