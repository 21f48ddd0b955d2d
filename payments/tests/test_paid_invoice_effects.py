"""What paying an invoice grants comes from columns the services wrote, never from invoice metadata
(a free note staff edit in the back office)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billing_project.tests.admin_helpers import change_form_data, change_url
from core.audit import Actor
from credits.models import LedgerKind
from credits.selectors import credit_balance_get
from payments.billing.run import billing_run
from payments.models import (
    BillingReason,
    CreditPackOrder,
    CreditPackOrderStatus,
    Invoice,
    InvoiceLineKind,
    PaymentCreditEntry,
)
from payments.providers.manual.services import payment_record_manual
from payments.services import LineSpec, invoice_create, invoice_finalize, invoice_mark_paid
from payments.services.credit_pack_orders import credit_pack_order_place
from payments.tests.conftest import T0, make_due_subscription
from subscriptions.tests.factories import CustomerFactory, PlanFactory

ACTOR = Actor.system("test")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def packs(settings):
    settings.CREDIT_PACKS = {"credits-100": {"credits": 100, "prices": {"USD": 500}}}


def _checkout_pack_invoice(*, credits: int) -> Invoice:
    invoice = invoice_create(customer=CustomerFactory(), billing_reason=BillingReason.CREDIT_PACK, lines=[
        LineSpec(kind=InvoiceLineKind.CREDIT_PACK, description=f"{credits} credits", unit_amount=Decimal(4900),
                 credits=credits)])
    return invoice_finalize(invoice=invoice, actor=ACTOR)


def _edit_metadata_in_admin(admin_client, invoice: Invoice, metadata: str) -> None:
    form = change_form_data(admin_client.get(change_url(invoice)), metadata=metadata)
    assert admin_client.post(change_url(invoice), form).status_code == 302
    invoice.refresh_from_db()
    assert invoice.metadata  # the note was saved: it is only a note


def test_staff_editing_a_pack_invoices_metadata_in_the_admin_does_not_change_the_credits_granted(admin_client):
    invoice = _checkout_pack_invoice(credits=500)
    _edit_metadata_in_admin(admin_client, invoice, '{"credits": 1000000}')

    invoice_mark_paid(invoice=invoice, actor=ACTOR)

    assert credit_balance_get(customer=invoice.customer) == 500


def test_staff_removing_the_order_list_from_a_renewal_invoices_metadata_still_grants_its_orders(admin_client):
    sub = make_due_subscription(plan=PlanFactory(amount=1000))
    order = credit_pack_order_place(customer=sub.customer, pack="credits-100", actor=ACTOR)
    CreditPackOrder.objects.filter(pk=order.pk).update(created_at=T0 + timedelta(days=1))
    billing_run(as_of=sub.current_period_end)
    invoice = Invoice.objects.get(subscription=sub)
    _edit_metadata_in_admin(admin_client, invoice, '{"credit_pack_orders": [], "credits": 99}')

    invoice_mark_paid(invoice=invoice, actor=ACTOR)

    order.refresh_from_db()
    assert order.status == CreditPackOrderStatus.FULFILLED
    assert credit_balance_get(customer=sub.customer) == 100 + sub.plan.credits_per_period


def test_the_payment_that_covers_a_pack_invoice_is_recorded_as_the_cause_of_its_credits():
    invoice = _checkout_pack_invoice(credits=300)
    partial = payment_record_manual(customer=invoice.customer, invoice=invoice, amount=900, method="cash", actor=ACTOR)
    rest = payment_record_manual(customer=invoice.customer, invoice=invoice, amount=4000, method="check", actor=ACTOR)

    [link] = PaymentCreditEntry.objects.all()
    assert (link.payment_id, link.entry.kind, link.entry.amount) == (rest.pk, LedgerKind.GRANT, 300)
    assert not partial.credit_entries.exists()


def test_an_invoice_staff_mark_paid_grants_its_credits_without_a_payment_to_credit_them_to():
    invoice = _checkout_pack_invoice(credits=300)
    invoice_mark_paid(invoice=invoice, actor=ACTOR)
    assert credit_balance_get(customer=invoice.customer) == 300
    assert not PaymentCreditEntry.objects.exists()
