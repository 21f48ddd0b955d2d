"""The database refuses invoice, payment and webhook rows that must never exist."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from payments.models import (
    BillingReason,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentStatus,
    ProviderAccount,
    ProviderEvent,
    ProviderPlanPrice,
    Refund,
)
from payments.tests.factories import InvoiceFactory, PaymentFactory
from subscriptions.tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

PERIOD = datetime(2025, 1, 1, tzinfo=UTC)


def refused(build):
    with pytest.raises(IntegrityError), transaction.atomic():
        build()


@pytest.mark.parametrize("fields", [
    {"total": -1}, {"amount_paid": -1}, {"amount_due": -1}, {"status": "sent"},
])
def test_invoice_refuses_negative_amounts_and_unknown_statuses(fields):
    invoice = InvoiceFactory()

    refused(lambda: Invoice.objects.filter(pk=invoice.pk).update(**fields))


@pytest.mark.parametrize("status", [InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.VOID,
                                    InvoiceStatus.UNCOLLECTIBLE])
def test_a_finalized_invoice_must_have_a_number(status):
    issued = datetime(2025, 1, 1, tzinfo=UTC)
    refused(lambda: InvoiceFactory(status=status, number=None, issued_at=issued))
    invoice = InvoiceFactory(issued_at=issued)
    refused(lambda: Invoice.objects.filter(pk=invoice.pk).update(status=status))


def test_a_draft_voided_before_it_was_issued_needs_no_number():
    invoice = InvoiceFactory(status=InvoiceStatus.DRAFT, number=None)

    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.VOID)

    assert Invoice.objects.get(pk=invoice.pk).number is None
    refused(lambda: InvoiceFactory(status=InvoiceStatus.OPEN, number=None))


def test_invoice_numbers_are_unique():
    InvoiceFactory(status=InvoiceStatus.OPEN, number="INV-2025-000001")

    refused(lambda: InvoiceFactory(status=InvoiceStatus.OPEN, number="INV-2025-000001"))


def test_drafts_without_a_number_never_collide():
    # The uniqueness index holds numbered invoices only; drafts, which have no number yet, are any number.
    drafts = [InvoiceFactory(status=InvoiceStatus.DRAFT, number=None) for _ in range(3)]

    assert Invoice.objects.filter(pk__in=[d.pk for d in drafts], number__isnull=True).count() == 3


@pytest.mark.parametrize(("first", "second"), [
    (BillingReason.SUBSCRIPTION_CREATE, BillingReason.SUBSCRIPTION_CYCLE),
    (BillingReason.SUBSCRIPTION_CYCLE, BillingReason.SUBSCRIPTION_CYCLE),
])
def test_a_subscription_period_is_invoiced_once(first, second):
    subscription = SubscriptionFactory()
    InvoiceFactory(customer=subscription.customer, subscription=subscription, billing_reason=first,
                   period_start=PERIOD)

    refused(lambda: InvoiceFactory(customer=subscription.customer, subscription=subscription,
                                   billing_reason=second, period_start=PERIOD))


def test_prorations_and_manual_invoices_may_share_a_period():
    subscription = SubscriptionFactory()
    for reason in (BillingReason.SUBSCRIPTION_CYCLE, BillingReason.SUBSCRIPTION_UPDATE,
                   BillingReason.SUBSCRIPTION_UPDATE, BillingReason.MANUAL):
        InvoiceFactory(customer=subscription.customer, subscription=subscription, billing_reason=reason,
                       period_start=PERIOD)

    assert subscription.invoices.count() == 4


def test_invoice_line_kind_is_checked():
    invoice = InvoiceFactory()

    refused(lambda: InvoiceLine.objects.create(invoice=invoice, kind="discount", description="x", unit_amount=1,
                                               amount=1))


@pytest.mark.parametrize("fields", [
    {"amount": 0}, {"amount": -100}, {"amount": 100, "amount_refunded": 101}, {"amount_refunded": -1},
    {"status": "settled"}, {"method": "bitcoin"},
])
def test_payment_refuses_impossible_amounts_refunds_statuses_and_methods(fields):
    refused(lambda: PaymentFactory(**fields))


def test_payment_refund_cannot_exceed_the_amount_by_raw_update():
    payment = PaymentFactory(amount=500, status=PaymentStatus.SUCCEEDED)

    refused(lambda: Payment.objects.filter(pk=payment.pk).update(amount_refunded=501))


@pytest.mark.parametrize("provider_id", ["provider_payment_id", "provider_charge_id"])
def test_provider_ids_map_to_one_payment_per_provider(provider_id):
    PaymentFactory(**{provider_id: "id_1"})
    PaymentFactory(**{provider_id: None})
    PaymentFactory(**{provider_id: None})
    # Another rail may use the same id for its own payment.
    PaymentFactory(method="paypal", **{provider_id: "id_1"})

    refused(lambda: PaymentFactory(**{provider_id: "id_1"}))


def test_a_payment_or_refund_without_its_rail_is_refused():
    refused(lambda: PaymentFactory(provider=""))
    payment = PaymentFactory(status=PaymentStatus.SUCCEEDED)
    refused(lambda: Refund.objects.create(payment=payment, amount=100, currency="USD", provider=""))


def test_a_customer_has_one_account_per_rail_and_a_provider_customer_id_maps_to_one_customer():
    first, second = CustomerFactory(), CustomerFactory()
    ProviderAccount.objects.create(customer=first, provider="stripe", provider_customer_id="cus_1")
    ProviderAccount.objects.create(customer=first, provider="paypal", provider_customer_id="cus_1")
    # Rails without a customer object leave the id null, which never collides.
    ProviderAccount.objects.create(customer=second, provider="manual")
    ProviderAccount.objects.create(customer=CustomerFactory(), provider="manual")

    refused(lambda: ProviderAccount.objects.create(customer=first, provider="stripe"))
    refused(lambda: ProviderAccount.objects.create(customer=second, provider="stripe", provider_customer_id="cus_1"))
    refused(lambda: ProviderAccount.objects.create(customer=second, provider=""))


def test_a_plan_has_one_price_per_rail_and_a_price_maps_back_to_one_plan():
    pro, basic = PlanFactory(code="pro"), PlanFactory(code="basic")
    ProviderPlanPrice.objects.create(plan=pro, provider="stripe", provider_price_id="price_1")
    ProviderPlanPrice.objects.create(plan=pro, provider="lemonsqueezy", provider_price_id="price_1",
                                     provider_product_id="prod_9")

    refused(lambda: ProviderPlanPrice.objects.create(plan=pro, provider="stripe", provider_price_id="price_2"))
    refused(lambda: ProviderPlanPrice.objects.create(plan=basic, provider="stripe", provider_price_id="price_1"))


def test_refund_refuses_nothing_unknown_statuses_and_duplicate_keys():
    payment = PaymentFactory(status=PaymentStatus.SUCCEEDED)
    Refund.objects.create(payment=payment, amount=100, currency="USD",
                          provider="stripe", idempotency_key="r1", provider_refund_id="re_1")

    refused(lambda: Refund.objects.create(payment=payment, amount=0, currency="USD", provider="stripe"))
    refused(lambda: Refund.objects.create(payment=payment, amount=100, currency="USD",
                                          provider="stripe", status="lost"))
    refused(lambda: Refund.objects.create(payment=payment, amount=100, currency="USD",
                                          provider="stripe", idempotency_key="r1"))
    refused(lambda: Refund.objects.create(payment=payment, amount=100, currency="USD",
                                          provider="stripe", provider_refund_id="re_1"))


def test_provider_events_are_stored_once_per_event_id_of_their_provider():
    ProviderEvent.objects.create(provider="stripe", event_id="evt_1", type="payment_intent.succeeded", payload={})
    # Another rail's event may carry the same id.
    ProviderEvent.objects.create(provider="paypal", event_id="evt_1", type="PAYMENT.CAPTURE.COMPLETED", payload={})

    refused(lambda: ProviderEvent.objects.create(provider="stripe", event_id="evt_1", type="x", payload={}))
    refused(lambda: ProviderEvent.objects.create(provider="stripe", event_id="evt_2", type="x", payload={},
                                                 status="lost"))
