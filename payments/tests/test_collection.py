import pytest
from django.utils import timezone

from payments.checkout import payment_method_setup_start
from payments.collection import invoice_collect
from payments.models import InvoiceStatus, Payment, PaymentStatus, Refund, RefundStatus
from payments.providers.stripe import gateway as stripe_gateway
from payments.services import payment_refund
from payments.tests.stripe_support import localstripe_post, stripe_account_id, stripe_account_set
from subscriptions.models import SubscriptionStatus

pytestmark = pytest.mark.django_db


def save_card(stripe_api, customer, payment_method="pm_card_visa"):
    setup = payment_method_setup_start(customer=customer)[1].raw
    localstripe_post(stripe_api, f"/v1/setup_intents/{setup.id}/confirm",
                     {"payment_method": payment_method, "client_secret": setup.client_secret})
    saved = stripe_gateway.setup_intent_retrieve(setup_intent_id=setup.id).payment_method_id
    stripe_account_set(customer, customer_id=stripe_account_id(customer), payment_method=saved)


def dunning_fields(invoice):
    invoice.refresh_from_db()
    return invoice.attempt_count, invoice.next_attempt_at


def test_without_stripe_key_nothing_is_charged_and_no_payment_is_written(settings, first_invoice, actor):
    settings.STRIPE_SECRET_KEY = ""
    stripe_account_set(first_invoice.customer, customer_id="cus_x", payment_method="pm_x")

    result = invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now())

    assert result.outcome == "no_payment_method" and result.payment is None
    assert "STRIPE_SECRET_KEY" in result.message
    assert not Payment.objects.exists()


def test_customer_without_saved_card_is_not_charged(stripe_api, first_invoice, actor):
    result = invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now())

    assert result.outcome == "no_payment_method" and result.payment is None
    assert not Payment.objects.exists()


@pytest.mark.slow
def test_off_session_charge_pays_the_invoice_and_activates_the_subscription(stripe_api, first_invoice, actor):
    save_card(stripe_api, first_invoice.customer)
    before = dunning_fields(first_invoice)

    result = invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now())

    payment = result.payment
    first_invoice.refresh_from_db()
    assert result.outcome == "succeeded"
    assert payment.status == PaymentStatus.SUCCEEDED and payment.amount == 2500
    assert payment.provider_payment_id.startswith("pi_") and payment.provider_charge_id.startswith("ch_")
    assert payment.collection_key == f"invoice-{first_invoice.pk}-attempt-1"
    assert first_invoice.status == InvoiceStatus.PAID and first_invoice.amount_paid == 2500
    assert first_invoice.subscription.status == SubscriptionStatus.ACTIVE
    assert list(payment.status_changes.values_list("from_status", "to_status")) == [("pending", "succeeded")]
    assert dunning_fields(first_invoice) == (before[0], None)  # paid invoices leave dunning by invoice_settle


@pytest.mark.slow
def test_declined_card_fails_the_payment_and_leaves_dunning_to_the_billing_run(stripe_api, first_invoice, actor):
    save_card(stripe_api, first_invoice.customer, payment_method="pm_card_chargeCustomerFail")
    before = dunning_fields(first_invoice)

    result = invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now())

    first_invoice.refresh_from_db()
    assert result.outcome == "failed" and result.message
    assert result.payment.status == PaymentStatus.FAILED
    assert result.payment.failure_code == "card_declined" and result.payment.failure_reason
    assert first_invoice.status == InvoiceStatus.OPEN and first_invoice.amount_paid == 0
    assert dunning_fields(first_invoice) == before


@pytest.mark.slow
def test_the_same_attempt_collected_twice_charges_once(stripe_api, first_invoice, actor):
    save_card(stripe_api, first_invoice.customer, payment_method="pm_card_chargeCustomerFail")

    first = invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now())
    again = invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now())

    assert first.payment.pk == again.payment.pk and again.outcome == "failed"
    assert Payment.objects.count() == 1
    assert first.payment.status_changes.count() == 1


@pytest.mark.slow
def test_next_attempt_is_a_new_payment_with_a_new_key(stripe_api, first_invoice, actor):
    save_card(stripe_api, first_invoice.customer, payment_method="pm_card_chargeCustomerFail")
    invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now())
    first_invoice.attempt_count = 1  # what the billing run's dunning records after a failure
    first_invoice.save()
    save_card(stripe_api, first_invoice.customer)
    first_invoice.customer.refresh_from_db()

    result = invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now())

    assert result.outcome == "succeeded"
    assert result.payment.collection_key == f"invoice-{first_invoice.pk}-attempt-2"
    assert Payment.objects.filter(invoice=first_invoice).count() == 2


@pytest.mark.slow
def test_card_payment_refunds_go_through_stripe_partially_then_fully(stripe_api, first_invoice, actor):
    save_card(stripe_api, first_invoice.customer)
    payment = invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now()).payment

    partial = payment_refund(payment=payment, actor=actor, amount=1000, reason="goodwill", idempotency_key="r-1")
    repeated = payment_refund(payment=payment, actor=actor, amount=1000, reason="goodwill", idempotency_key="r-1")
    rest = payment_refund(payment=payment, actor=actor, reason="cancelled")

    payment.refresh_from_db()
    assert partial.pk == repeated.pk and partial.provider_refund_id.startswith("re_")
    assert partial.status == RefundStatus.SUCCEEDED and rest.amount == 1500
    assert rest.provider_refund_id.startswith("re_") and rest.provider_refund_id != partial.provider_refund_id
    assert payment.status == PaymentStatus.REFUNDED and payment.amount_refunded == 2500
    assert Refund.objects.filter(payment=payment).count() == 2


@pytest.mark.slow
def test_provider_error_is_a_failed_attempt_and_the_payment_stays_findable(stripe_api, first_invoice, actor):
    save_card(stripe_api, first_invoice.customer)
    stripe_account_set(first_invoice.customer, customer_id=stripe_account_id(first_invoice.customer),
                       payment_method="pm_deletedsincelastmonth")

    result = invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now())

    first_invoice.refresh_from_db()
    assert result.outcome == "failed" and result.message.startswith("Stripe request failed")
    assert result.payment.status == PaymentStatus.FAILED and result.payment.failure_code
    assert first_invoice.status == InvoiceStatus.OPEN


@pytest.mark.django_db(transaction=True)
def test_two_collectors_on_one_attempt_insert_one_payment(settings, monkeypatch, first_invoice, actor):
    """The unique collection_key, not a look-up before the insert, keeps racing collectors to one row."""
    from datetime import UTC, datetime

    from billing_project.tests.threads import race
    from payments.providers.stripe.gateway import PaymentIntentResult

    settings.STRIPE_SECRET_KEY = "sk_test_local"
    customer = first_invoice.customer
    stripe_account_set(customer, customer_id="cus_race", payment_method="pm_race")

    def charge(*, idempotency_key, amount, currency, **_):
        # Stripe answers the same PaymentIntent for the same idempotency key.
        return PaymentIntentResult(id=f"pi_{idempotency_key}", status="processing", amount=amount, currency=currency,
                                   customer_id="cus_race", payment_method_id="pm_race", latest_charge_id="",
                                   created=datetime.now(UTC))

    monkeypatch.setattr(stripe_gateway, "payment_intent_charge_off_session", charge)
    outcome = race([lambda: invoice_collect(invoice=first_invoice, actor=actor, now=timezone.now())] * 2)

    assert outcome.errors == []
    assert Payment.objects.filter(invoice=first_invoice).count() == 1
    payment = Payment.objects.get(invoice=first_invoice)
    assert payment.collection_key == f"invoice-{first_invoice.pk}-attempt-1"
    assert {result.payment.pk for result in outcome.results} == {payment.pk}


def test_a_second_payment_for_the_same_attempt_is_refused_by_the_database(first_invoice):
    from django.db import IntegrityError, transaction

    fields = dict(customer=first_invoice.customer, invoice=first_invoice, amount=100, currency="USD",
                  method="stripe", provider="stripe", collection_key=f"invoice-{first_invoice.pk}-attempt-1")
    Payment.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(**fields)
