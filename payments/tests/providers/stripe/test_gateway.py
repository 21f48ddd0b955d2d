"""The gateway against a real Stripe API peer (localstripe on loopback).

localstripe has no Checkout Sessions (POST /v1/checkout/sessions answers 404) and ignores
Idempotency-Key headers; Checkout is covered by signed webhook tests (test_webhook_handlers.py) and our
own idempotency by the collection tests."""

import pytest

from core.exceptions import CardDeclined, PaymentProviderError, PaymentProviderUnavailable
from payments.checkout import payment_method_setup_start
from payments.providers.stripe import gateway as stripe_gateway
from payments.providers.stripe.services import customer_stripe_ensure
from payments.tests.stripe_support import localstripe_post, stripe_account_id
from subscriptions.tests.factories import CustomerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def saved_card(stripe_api, customer, payment_method="pm_card_visa") -> str:
    """Save a card the way a customer's browser does: Stripe.js confirms our SetupIntent."""
    setup = payment_method_setup_start(customer=customer)[1].raw
    localstripe_post(stripe_api, f"/v1/setup_intents/{setup.id}/confirm",
                     {"payment_method": payment_method, "client_secret": setup.client_secret})
    return stripe_gateway.setup_intent_retrieve(setup_intent_id=setup.id).payment_method_id


def test_stripe_customer_is_created_once_and_reused(stripe_api):
    customer = CustomerFactory(email="ada@example.com")

    first = customer_stripe_ensure(customer=customer)
    again = customer_stripe_ensure(customer=customer)

    customer.refresh_from_db()
    assert first.startswith("cus_") and again == first == stripe_account_id(customer)
    remote = stripe_gateway.customer_retrieve(customer_id=first)
    assert remote.email == "ada@example.com"


def test_setup_intent_saves_a_card_for_off_session_use(stripe_api):
    customer = CustomerFactory()

    setup = payment_method_setup_start(customer=customer)[1].raw
    localstripe_post(stripe_api, f"/v1/setup_intents/{setup.id}/confirm",
                     {"payment_method": "pm_card_visa", "client_secret": setup.client_secret})
    confirmed = stripe_gateway.setup_intent_retrieve(setup_intent_id=setup.id)

    assert setup.status == "requires_payment_method" and setup.client_secret.startswith(setup.id)
    assert confirmed.status == "succeeded"
    assert confirmed.payment_method_id.startswith("pm_")
    assert confirmed.customer_id == stripe_account_id(customer)


def test_off_session_payment_intent_succeeds_and_can_be_read_back(stripe_api):
    customer = CustomerFactory()
    card = saved_card(stripe_api, customer)

    intent = stripe_gateway.payment_intent_charge_off_session(
        customer_id=stripe_account_id(customer), payment_method_id=card, amount=1999, currency="USD",
        metadata={"payment_id": "1"}, idempotency_key="test-charge-1")
    read_back = stripe_gateway.payment_intent_retrieve(payment_intent_id=intent.id)

    assert intent.status == "succeeded" and intent.amount == 1999 and intent.currency == "USD"
    assert intent.latest_charge_id.startswith("ch_")
    assert read_back.status == "succeeded" and read_back.metadata == {"payment_id": "1"}


def test_declined_card_raises_card_declined(stripe_api):
    customer = CustomerFactory()
    card = saved_card(stripe_api, customer, payment_method="pm_card_chargeCustomerFail")

    with pytest.raises(CardDeclined) as declined:
        stripe_gateway.payment_intent_charge_off_session(
            customer_id=stripe_account_id(customer), payment_method_id=card, amount=500, currency="USD",
            metadata={}, idempotency_key="test-charge-declined")

    assert declined.value.http_status == 402
    assert declined.value.extra["provider_code"] == "card_declined"


def test_partial_refund_is_created_in_stripe(stripe_api):
    customer = CustomerFactory()
    card = saved_card(stripe_api, customer)
    intent = stripe_gateway.payment_intent_charge_off_session(
        customer_id=stripe_account_id(customer), payment_method_id=card, amount=1000, currency="USD",
        metadata={}, idempotency_key="test-charge-refund")

    refund = stripe_gateway.refund_create(payment_intent_id=intent.id, amount=400, metadata={"refund_id": "9"},
                                          idempotency_key="test-refund-1")

    assert refund.id.startswith("re_") and refund.status == "succeeded"
    assert refund.amount == 400 and refund.charge_id == intent.latest_charge_id


def test_stripe_error_answer_becomes_payment_provider_error(stripe_api):
    with pytest.raises(PaymentProviderError) as error:
        stripe_gateway.payment_intent_retrieve(payment_intent_id="pi_doesnotexist")

    assert error.value.http_status == 502


def test_without_secret_key_stripe_is_unavailable_with_a_clear_message(settings):
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(PaymentProviderUnavailable) as unavailable:
        stripe_gateway.customer_create(email="a@example.com", name="A", metadata={}, idempotency_key="k")

    assert unavailable.value.http_status == 503
    assert "STRIPE_SECRET_KEY" in unavailable.value.message and "Manual payments" in unavailable.value.message


def test_lists_read_every_page_of_a_window_and_nothing_outside_it(stripe_api, monkeypatch):
    from datetime import UTC, datetime, timedelta

    monkeypatch.setattr(stripe_gateway, "LIST_PAGE_SIZE", 2)  # five intents take three pages
    customer = CustomerFactory()
    card = saved_card(stripe_api, customer)
    since = datetime.now(UTC) - timedelta(seconds=1)
    intents = [stripe_gateway.payment_intent_charge_off_session(
        customer_id=stripe_account_id(customer), payment_method_id=card, amount=100 + n, currency="USD",
        metadata={}, idempotency_key=f"list-{customer.pk}-{n}") for n in range(5)]
    refunds = [stripe_gateway.refund_create(payment_intent_id=intent.id, amount=50, metadata={},
                                            idempotency_key=f"list-refund-{intent.id}") for intent in intents[:3]]
    until = datetime.now(UTC) + timedelta(seconds=1)

    listed = stripe_gateway.payment_intents_list(since=since, until=until)
    assert {i.id for i in intents} <= {i.id for i in listed}
    assert {r.id for r in refunds} <= {r.id for r in stripe_gateway.refunds_list(since=since, until=until)}
    assert stripe_gateway.payment_intents_list(since=until, until=until + timedelta(hours=1)) == []
