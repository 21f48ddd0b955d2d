from datetime import UTC, datetime, timedelta

import pytest

from billing_project.tests.admin_helpers import change_form_data, change_url
from billing_project.tests.api_support import api_customer
from core.exceptions import PaymentProviderUnavailable
from payments.checkout import checkout_credit_pack_start, checkout_subscription_start
from payments.models import BillingReason, Invoice, InvoiceStatus, Payment, PaymentMethod, ProviderAccount, Refund
from payments.providers.manual.services import payment_record_manual
from payments.providers.stripe.gateway import API_VERSION
from payments.providers.stripe.services import customer_default_payment_method_set
from payments.services import payment_refund
from payments.tests.factories import StripeCustomerFactory
from payments.tests.stripe_support import new_id, stripe_account_id, stripe_card, stripe_card_set_at
from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.tests.factories import CustomerFactory, PlanFactory

pytestmark = pytest.mark.django_db

URLS = {"success_url": "https://billing.example.com/done", "cancel_url": "https://billing.example.com/cancel"}


def test_subscription_checkout_opens_a_session_for_the_first_invoice(recording_stripe, actor):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    plan = PlanFactory(amount=1900, trial_days=14)

    start = checkout_subscription_start(customer=customer, plan=plan, actor=actor, **URLS)

    request = recording_stripe.requests[-1]
    fields = request["fields"]
    assert request["path"] == "/v1/checkout/sessions"
    assert request["headers"]["Idempotency-Key"] == f"checkout-invoice-{start.invoice.pk}"
    assert request["headers"]["Stripe-Version"] == API_VERSION
    assert fields["mode"] == "payment" and fields["customer"] == stripe_account_id(customer)
    assert fields["line_items[0][price_data][unit_amount]"] == "1900"
    assert fields["line_items[0][price_data][currency]"] == "usd"
    assert fields["payment_intent_data[setup_future_usage]"] == "off_session"
    assert fields["metadata[kind]"] == "subscription" and fields["metadata[invoice_id]"] == str(start.invoice.pk)
    assert start.session.url.startswith("https://checkout.stripe.com/")
    assert start.subscription.status == SubscriptionStatus.INCOMPLETE
    # Checkout collects this invoice: the billing run must not charge it off-session meanwhile.
    assert start.invoice.status == InvoiceStatus.OPEN and start.invoice.next_attempt_at is None
    assert start.invoice.metadata["checkout_session_id"] == start.session.reference


def test_credit_pack_checkout_opens_a_session_for_a_credit_pack_invoice(recording_stripe, actor):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))

    start = checkout_credit_pack_start(customer=customer, credits=1000, amount=4500, actor=actor, **URLS)

    fields = recording_stripe.requests[-1]["fields"]
    assert start.invoice.billing_reason == BillingReason.CREDIT_PACK and start.invoice.lines.get().credits == 1000
    assert start.invoice.amount_due == 4500 and start.invoice.next_attempt_at is None
    assert fields["metadata[kind]"] == "credit_pack" and "payment_intent_data[setup_future_usage]" not in fields


def test_without_stripe_key_checkout_is_unavailable_and_writes_nothing(settings, actor):
    settings.STRIPE_SECRET_KEY = ""
    customer = CustomerFactory()

    with pytest.raises(PaymentProviderUnavailable):
        checkout_subscription_start(customer=customer, plan=PlanFactory(), actor=actor, **URLS)
    with pytest.raises(PaymentProviderUnavailable):
        checkout_credit_pack_start(customer=customer, credits=10, amount=100, actor=actor, **URLS)

    assert not Subscription.objects.exists() and not Invoice.objects.exists()


def test_without_stripe_key_manual_payments_and_refunds_still_work(settings, first_invoice, actor):
    settings.STRIPE_SECRET_KEY = ""

    payment = payment_record_manual(customer=first_invoice.customer, amount=2500, method=PaymentMethod.CHECK,
                                    actor=actor, invoice=first_invoice, reference="chk 42")
    refund = payment_refund(payment=payment, actor=actor, amount=500, reason="overpaid")

    first_invoice.refresh_from_db()
    assert first_invoice.status == InvoiceStatus.PAID
    assert first_invoice.subscription.status == SubscriptionStatus.ACTIVE
    assert refund.amount == 500 and refund.provider_refund_id is None


def test_without_stripe_key_card_refund_is_refused_with_a_clear_message(settings, actor):
    settings.STRIPE_SECRET_KEY = ""
    customer = CustomerFactory()
    payment = Payment.objects.create(customer=customer, amount=900, currency="USD", method=PaymentMethod.STRIPE,
                                     provider="stripe",
                                     provider_payment_id=new_id("pi"), status="succeeded")

    with pytest.raises(PaymentProviderUnavailable) as unavailable:
        payment_refund(payment=payment, actor=actor, amount=100)

    assert "STRIPE_SECRET_KEY" in unavailable.value.message
    assert not Refund.objects.exists()
    payment.refresh_from_db()
    assert payment.amount_refunded == 0


def test_the_stale_card_guard_is_a_column_a_customer_cannot_write_through_the_api(actor):
    """Writing the guard's old metadata key (or the column's name) through the API changes nothing: a
    later card is still saved."""
    caller = api_customer()
    customer = caller.customer
    far_future = "2999-01-01T00:00:00+00:00"
    response = caller.client.patch(f"/api/v1/customers/{customer.pk}/", {
        "metadata": {"stripe_default_payment_method_set_at": far_future},
        "stripe_default_payment_method_set_at": far_future,
        "provider_accounts": [{"provider": "stripe", "default_payment_method_set_at": far_future}]}, format="json")
    assert response.status_code == 200, response.content
    customer.refresh_from_db()
    assert stripe_card_set_at(customer) is None

    observed = datetime(2026, 3, 1, tzinfo=UTC)
    assert customer_default_payment_method_set(customer=customer, payment_method_id="pm_new", observed_at=observed,
                                               actor=actor) is True
    customer.refresh_from_db()
    assert (stripe_card(customer), stripe_card_set_at(customer)) == (
        "pm_new", observed)
    # The guard itself still works: an older message does not bring back an older card.
    assert customer_default_payment_method_set(customer=customer, payment_method_id="pm_old",
                                               observed_at=observed - timedelta(days=1), actor=actor) is False
    customer.refresh_from_db()
    assert stripe_card(customer) == "pm_new"


def test_the_stale_card_guard_is_read_only_in_the_admin(admin_client):
    customer = StripeCustomerFactory(stripe_default_payment_method_id="pm_1")
    page = admin_client.get(change_url(customer))
    form = change_form_data(page, **{"provider_accounts-0-default_payment_method_set_at_0": "2999-01-01",
                                     "provider_accounts-0-default_payment_method_set_at_1": "00:00:00"})

    assert admin_client.post(change_url(customer), form).status_code == 302
    assert stripe_card_set_at(customer) is None
    [accounts] = [inline.formset for inline in page.context["inline_admin_formsets"]
                  if inline.formset.model is ProviderAccount]
    assert len(accounts.forms) == 1
    assert all("default_payment_method_set_at" not in form.fields for form in accounts.forms)
