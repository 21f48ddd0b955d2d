"""Invoices and payments emit their outbound webhook events from the status move itself, on every path."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import transaction

from core.audit import Actor
from outbound_webhooks.models import EventType, WebhookDelivery, WebhookEvent
from outbound_webhooks.tests.factories import WebhookEndpointFactory
from payments.billing.run import billing_run
from payments.models import Invoice, InvoiceLineKind, PaymentMethod
from payments.providers.manual.services import payment_record_manual
from payments.services import LineSpec, invoice_create, invoice_finalize, invoice_void, payment_refund
from payments.tests.conftest import make_due_subscription
from subscriptions.tests.factories import CustomerFactory, PlanFactory

ACTOR = Actor.system("test")
FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint():
    return WebhookEndpointFactory(event_types=EventType.values)


def _draft(customer, amount: int = 2500) -> Invoice:
    return invoice_create(customer=customer, lines=[
        LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="Setup fee", unit_amount=Decimal(amount))])


def _events(object_type: str) -> list[tuple[str, int]]:
    return list(WebhookEvent.objects.filter(object_type=object_type).order_by("pk")
                .values_list("event_type", "sequence"))


def test_finalizing_paying_and_refunding_emit_in_order_with_the_objects_as_they_became(endpoint):
    customer = CustomerFactory(user=None, currency="USD")
    invoice = invoice_finalize(invoice=_draft(customer), actor=ACTOR)
    payment = payment_record_manual(customer=customer, amount=2500, method=PaymentMethod.CASH, actor=ACTOR,
                                    invoice=invoice)
    payment_refund(payment=payment, actor=ACTOR, amount=1000, reason="goodwill")
    assert _events("invoice") == [("invoice.finalized", 1), ("invoice.paid", 2)]
    assert _events("payment") == [("payment.succeeded", 1), ("payment.refunded", 2)]
    paid = WebhookEvent.objects.get(event_type="invoice.paid").data
    assert (paid["id"], paid["number"], paid["status"], paid["total"], paid["currency"]) == (
        invoice.pk, invoice.number, "paid", 2500, "USD")
    refunded = WebhookEvent.objects.get(event_type="payment.refunded").data
    assert (refunded["refunded_now"], refunded["amount_refunded"], refunded["customer"]) == (1000, 1000, customer.pk)
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 4


def test_a_voided_invoice_emits_invoice_voided(endpoint):
    invoice = invoice_finalize(invoice=_draft(CustomerFactory(user=None)), actor=ACTOR)
    invoice_void(invoice=invoice, actor=ACTOR)
    assert _events("invoice") == [("invoice.finalized", 1), ("invoice.voided", 2)]


def test_a_rolled_back_finalization_emits_nothing(endpoint):
    draft = _draft(CustomerFactory(user=None))
    with pytest.raises(RuntimeError), transaction.atomic():
        invoice_finalize(invoice=draft, actor=ACTOR)
        raise RuntimeError("the caller failed after finalizing")
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()


def test_the_billing_run_emits_one_invoice_finalized_per_invoice_it_issues_in_bulk(endpoint):
    plan = PlanFactory(amount=1500)
    for _ in range(3):
        make_due_subscription(plan=plan)
    billing_run(as_of=FEB_28)
    finalized = WebhookEvent.objects.filter(event_type="invoice.finalized")
    assert sorted(finalized.values_list("object_id", flat=True)) == sorted(Invoice.objects.values_list("pk", flat=True))
    assert {e.data["status"] for e in finalized} == {"open"} and finalized.count() == 3
    renewed = [e.object_id for e in WebhookEvent.objects.filter(event_type="subscription.updated")
               if e.data["change"] == "renewed"]
    assert sorted(renewed) == sorted(Invoice.objects.values_list("subscription_id", flat=True))


def test_the_billing_run_writes_no_event_when_no_endpoint_subscribes():
    WebhookEndpointFactory(event_types=["credits.low"])
    make_due_subscription(plan=PlanFactory(amount=1500))
    billing_run(as_of=FEB_28)
    assert not WebhookEvent.objects.exists()
