"""Collection, refunds and checkout reach a rail only through the contract: a rail that is not Stripe,
installed by dotted path, is charged, refunds and opens checkout with no other change."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.audit import Actor
from payments import collection
from payments.checkout import checkout_credit_pack_start, payment_method_setup_start
from payments.models import Invoice, InvoiceStatus, PaymentStatus, ProviderAccount, RefundStatus
from payments.providers import ChargeRequest, CheckoutRequest, RefundRequest
from payments.services import payment_refund
from payments.tests.providers.fake_rail import FakeRail
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URLS = {"success_url": "https://billing.example.com/done", "cancel_url": "https://billing.example.com/cancel"}


@pytest.fixture
def fake_rail(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.PAYMENT_PROVIDERS = ["payments.providers.stripe.provider.StripeProvider",
                                 "payments.tests.providers.fake_rail.FakeRail",
                                 "payments.providers.manual.ManualProvider"]
    FakeRail.requests = []
    return FakeRail.requests


def saved_method(customer, *, provider="paypal", method="fake-pm", set_at=None, customer_id=None):
    """A payment method saved at `provider`, as that rail's webhook would have left it."""
    return ProviderAccount.objects.create(customer=customer, provider=provider, provider_customer_id=customer_id,
                                          default_payment_method_id=method, default_payment_method_set_at=set_at)


def test_collection_charges_the_configured_rail_that_holds_a_saved_method(fake_rail, first_invoice):
    saved_method(first_invoice.customer)
    assert collection.invoice_chargeable(invoice=first_invoice)

    result = collection.invoice_collect(invoice=first_invoice, actor=Actor.system("test"), now=timezone.now())

    [request] = fake_rail
    first_invoice.refresh_from_db()
    assert isinstance(request, ChargeRequest) and request.account.default_payment_method == "fake-pm"
    assert request.idempotency_key == f"invoice-{first_invoice.pk}-attempt-1"
    assert request.metadata["payment_id"] == str(result.payment.pk)
    assert result.outcome == collection.SUCCEEDED and result.payment.method == "paypal"
    assert (result.payment.provider, result.payment.provider_payment_id) == ("paypal", f"fake-ch-{result.payment.pk}")
    assert first_invoice.status == InvoiceStatus.PAID


def test_with_methods_saved_at_two_rails_collection_charges_the_one_saved_last(fake_rail, settings, first_invoice):
    settings.STRIPE_SECRET_KEY = "sk_test_configured_but_never_called"
    saved_at = timezone.now()
    stripe = saved_method(first_invoice.customer, provider="stripe", method="pm_older", customer_id="cus_1",
                          set_at=saved_at - timedelta(days=1))
    saved_method(first_invoice.customer, set_at=saved_at)

    result = collection.invoice_collect(invoice=first_invoice, actor=Actor.system("test"), now=timezone.now())

    [request] = fake_rail
    assert request.account.provider == "paypal" and result.payment.provider == "paypal"
    # Saving a card at Stripe afterwards makes Stripe the rail renewals charge.
    stripe.default_payment_method_set_at = saved_at + timedelta(days=1)
    stripe.save()
    chosen = collection._charge_account(invoice=Invoice.objects.get(pk=first_invoice.pk))
    assert chosen[0].code == "stripe" and chosen[1].default_payment_method == "pm_older"


def test_collection_without_a_configured_charging_rail_says_why(settings, first_invoice):
    settings.STRIPE_SECRET_KEY = ""

    result = collection.invoice_collect(invoice=first_invoice, actor=Actor.system("test"), now=timezone.now())

    assert result.outcome == collection.NO_PAYMENT_METHOD and "STRIPE_SECRET_KEY" in result.message
    assert not first_invoice.payments.exists()


def test_a_refund_goes_back_through_the_rail_of_the_payment(fake_rail, first_invoice):
    saved_method(first_invoice.customer)
    paid = collection.invoice_collect(invoice=first_invoice, actor=Actor.system("test"), now=timezone.now())

    refund = payment_refund(payment=paid.payment, actor=Actor.system("test"), amount=1000, reason="goodwill")

    request = fake_rail[-1]
    paid.payment.refresh_from_db()
    assert isinstance(request, RefundRequest) and request.payment_reference == paid.payment.provider_payment_id
    assert request.idempotency_key == f"refund-{refund.pk}" and request.metadata["refund_id"] == str(refund.pk)
    assert refund.status == RefundStatus.SUCCEEDED
    assert (paid.payment.status, paid.payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, 1000)


def test_checkout_and_card_setup_open_on_the_preferred_configured_rail(fake_rail, actor):
    customer = CustomerFactory()

    start = checkout_credit_pack_start(customer=customer, credits=100, amount=900, actor=actor, **URLS)
    account, setup = payment_method_setup_start(customer=customer)

    checkout_request = fake_rail[0]
    assert isinstance(checkout_request, CheckoutRequest) and checkout_request.lines[0].unit_amount == 900
    assert checkout_request.idempotency_key == f"checkout-invoice-{start.invoice.pk}"
    assert start.session.url == "https://pay.example.com/fake-cs"
    assert start.invoice.metadata["checkout_session_id"] == "fake-cs"
    assert (account.reference, setup.client_secret) == (f"fake-cus-{customer.pk}", "fake-secret")
