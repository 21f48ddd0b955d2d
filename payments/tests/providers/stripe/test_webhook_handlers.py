"""What each Stripe event does to our rows, delivered signed through /webhooks/stripe/."""

import logging
import time

import pytest

from core.audit import Actor
from credits.models import CreditBalance
from payments.models import (
    BillingReason,
    Invoice,
    InvoiceLineKind,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    ProviderEventStatus,
    Refund,
)
from payments.providers.stripe import gateway as stripe_gateway
from payments.providers.stripe.models import StripeEvent
from payments.providers.stripe.services import customer_stripe_ensure
from payments.providers.stripe.webhooks.services import stripe_event_reprocess
from payments.services import LineSpec, invoice_create, invoice_finalize, payment_refund_apply, subscription_start
from payments.tests.factories import StripeCustomerFactory
from payments.tests.stripe_support import (
    charge_object,
    checkout_session_object,
    customer_object,
    deliver,
    dispute_object,
    localstripe_post,
    new_id,
    payment_intent_object,
    refund_object,
    setup_intent_object,
    stripe_account_id,
    stripe_card,
    stripe_event,
)
from subscriptions.models import SubscriptionStatus
from subscriptions.tests.factories import CustomerFactory, PlanFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


def succeeded_card_payment(amount=2000) -> Payment:
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    return Payment.objects.create(customer=customer, amount=amount, currency="USD", method=PaymentMethod.STRIPE,
                                  provider="stripe",
                                  provider_payment_id=new_id("pi"), provider_charge_id=new_id("ch"),
                                  status=PaymentStatus.SUCCEEDED)


def completed(invoice: Invoice, *, kind: str, payment_intent: str, payment_status="paid"):
    session = checkout_session_object(
        id=new_id("cs"), customer=stripe_account_id(invoice.customer), amount_total=invoice.amount_due,
        payment_intent=payment_intent, payment_status=payment_status,
        metadata={"kind": kind, "invoice_id": str(invoice.pk), "customer_id": str(invoice.customer_id)})
    return stripe_event("checkout.session.completed", session)


# ----------------------------------------------------------------------------------------- checkout


@pytest.mark.slow
def test_checkout_completed_pays_the_first_invoice_activates_and_saves_the_card(client, webhook_secret, stripe_api):
    customer = CustomerFactory()
    customer_stripe_ensure(customer=customer)
    _, invoice = subscription_start(customer=customer, plan=PlanFactory(amount=1500, trial_days=0), actor=ACTOR,
                                    with_trial=False)
    # The PaymentIntent Checkout created and confirmed in the customer's browser.
    intent = localstripe_post(stripe_api, "/v1/payment_intents", {
        "amount": 1500, "currency": "usd", "customer": stripe_account_id(customer), "payment_method": "pm_card_visa",
        "confirm": "true"})

    response = deliver(client, completed(invoice, kind="subscription", payment_intent=intent["id"]))

    invoice.refresh_from_db()
    customer.refresh_from_db()
    payment = Payment.objects.get()
    assert response.status_code == 200
    assert StripeEvent.objects.get().status == ProviderEventStatus.PROCESSED
    assert payment.status == PaymentStatus.SUCCEEDED and payment.provider_payment_id == intent["id"]
    assert invoice.status == InvoiceStatus.PAID and invoice.subscription.status == SubscriptionStatus.ACTIVE
    assert stripe_card(customer) == intent["payment_method"]

    # payment_intent.succeeded for the same payment, arriving after: nothing more happens.
    deliver(client, stripe_event("payment_intent.succeeded", payment_intent_object(
        id=intent["id"], amount=1500, status="succeeded", customer=stripe_account_id(customer))))
    assert Payment.objects.get().status_changes.count() == 1


@pytest.mark.slow
def test_failing_handler_leaves_no_half_applied_writes(client, webhook_secret, stripe_api):
    customer = CustomerFactory()
    customer_stripe_ensure(customer=customer)
    _, invoice = subscription_start(customer=customer, plan=PlanFactory(amount=1500, trial_days=0), actor=ACTOR,
                                    with_trial=False)

    # Reading the card from a PaymentIntent Stripe does not know fails after the payment was recorded.
    deliver(client, completed(invoice, kind="subscription", payment_intent="pi_unknowntostripe"))

    invoice.refresh_from_db()
    event = StripeEvent.objects.get()
    assert event.status == ProviderEventStatus.FAILED and "PaymentProviderError" in event.error
    assert not Payment.objects.exists()
    assert invoice.status == InvoiceStatus.OPEN and invoice.subscription.status == SubscriptionStatus.INCOMPLETE


def test_expired_checkout_voids_its_invoice_and_cancels_the_waiting_subscription(client, webhook_secret):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    _, invoice = subscription_start(customer=customer, plan=PlanFactory(amount=1500, trial_days=0), actor=ACTOR,
                                    with_trial=False)
    event = completed(invoice, kind="subscription", payment_intent=None, payment_status="unpaid")
    event.update(type="checkout.session.expired")
    event["data"]["object"]["status"] = "expired"

    deliver(client, event)

    invoice.refresh_from_db()
    assert StripeEvent.objects.get().status == ProviderEventStatus.PROCESSED
    assert invoice.status == InvoiceStatus.VOID
    assert invoice.subscription.status == SubscriptionStatus.CANCELED


def test_expired_checkout_keeps_an_invoice_that_was_paid(client, webhook_secret):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    invoice = credit_pack_invoice(customer)
    deliver(client, completed(invoice, kind="credit_pack", payment_intent=new_id("pi")))
    expired = completed(invoice, kind="credit_pack", payment_intent=None, payment_status="unpaid")
    expired.update(type="checkout.session.expired")

    deliver(client, expired)

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert StripeEvent.objects.get(event_id=expired["id"]).status == ProviderEventStatus.IGNORED


def credit_pack_invoice(customer, *, credits=500, amount=4900) -> Invoice:
    invoice = invoice_create(customer=customer, billing_reason=BillingReason.CREDIT_PACK,
                             lines=[LineSpec(kind=InvoiceLineKind.CREDIT_PACK, description=f"{credits} credits",
                                             unit_amount=amount, credits=credits)])
    return invoice_finalize(invoice=invoice, actor=ACTOR)


def test_credit_pack_checkout_grants_its_credits_once(client, webhook_secret):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    invoice = credit_pack_invoice(customer)
    pi = new_id("pi")
    event = completed(invoice, kind="credit_pack", payment_intent=pi)

    deliver(client, event)
    stripe_event_reprocess(event=StripeEvent.objects.get(event_id=event["id"]), actor=ACTOR)
    deliver(client, stripe_event("payment_intent.succeeded", payment_intent_object(
        id=pi, amount=invoice.amount_due, status="succeeded", customer=stripe_account_id(customer))))

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert CreditBalance.objects.get(customer=customer).balance == 500
    assert customer.credit_grants.count() == 1


def test_delayed_payment_checkout_waits_for_payment_intent_succeeded(client, webhook_secret):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    invoice = credit_pack_invoice(customer, credits=100, amount=900)
    pi = new_id("pi")

    deliver(client, completed(invoice, kind="credit_pack", payment_intent=pi, payment_status="unpaid"))
    invoice.refresh_from_db()
    assert Payment.objects.get().status == PaymentStatus.PROCESSING and invoice.status == InvoiceStatus.OPEN

    deliver(client, stripe_event("payment_intent.succeeded", payment_intent_object(
        id=pi, amount=900, status="succeeded", customer=stripe_account_id(customer))))

    invoice.refresh_from_db()
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED and invoice.status == InvoiceStatus.PAID
    assert CreditBalance.objects.get(customer=customer).balance == 100


def test_checkout_for_another_stripe_customer_is_refused(client, webhook_secret):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    invoice = credit_pack_invoice(customer)
    event = completed(invoice, kind="credit_pack", payment_intent=new_id("pi"))
    event["data"]["object"]["customer"] = new_id("cus")

    deliver(client, event)

    assert StripeEvent.objects.get().status == ProviderEventStatus.FAILED
    assert not Payment.objects.exists()


# ------------------------------------------------------------------------------------------ refunds


def test_charge_refunded_does_not_count_our_own_refund_twice(client, webhook_secret):
    payment = succeeded_card_payment()
    ours = Refund.objects.create(payment=payment, amount=500, currency="USD",
                                 provider="stripe", provider_refund_id=new_id("re"),
                                 status="succeeded")
    payment_refund_apply(payment=payment, amount=500, actor=ACTOR)
    listed = refund_object(id=ours.provider_refund_id, amount=500, charge=payment.provider_charge_id,
                           payment_intent=payment.provider_payment_id)

    for refunds in ([listed], None):  # with the refund list expanded, and as the pinned version sends it
        deliver(client, stripe_event("charge.refunded", charge_object(
            id=payment.provider_charge_id, amount=2000, amount_refunded=500,
            payment_intent=payment.provider_payment_id, refunds=refunds)))

    payment.refresh_from_db()
    assert payment.amount_refunded == 500 and payment.status == PaymentStatus.PARTIALLY_REFUNDED
    assert Refund.objects.count() == 1
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {ProviderEventStatus.IGNORED}


def test_refund_made_in_the_stripe_dashboard_is_recorded(client, webhook_secret):
    payment = succeeded_card_payment()
    dashboard = refund_object(id=new_id("re"), amount=2000, charge=payment.provider_charge_id,
                              payment_intent=payment.provider_payment_id)

    deliver(client, stripe_event("charge.refunded", charge_object(
        id=payment.provider_charge_id, amount=2000, amount_refunded=2000,
        payment_intent=payment.provider_payment_id, refunds=[dashboard])))

    payment.refresh_from_db()
    refund = Refund.objects.get()
    assert payment.status == PaymentStatus.REFUNDED and payment.amount_refunded == 2000
    assert refund.provider_refund_id == dashboard["id"] and refund.amount == 2000 and refund.status == "succeeded"


def test_our_pending_refund_is_settled_by_charge_refunded(client, webhook_secret):
    payment = succeeded_card_payment()
    pending = Refund.objects.create(payment=payment, amount=800, currency="USD",
                                    provider="stripe", provider_refund_id=new_id("re"),
                                    status="pending")

    deliver(client, stripe_event("charge.refunded", charge_object(
        id=payment.provider_charge_id, amount=2000, amount_refunded=800,
        payment_intent=payment.provider_payment_id)))

    payment.refresh_from_db()
    pending.refresh_from_db()
    assert pending.status == "succeeded" and Refund.objects.count() == 1
    assert payment.amount_refunded == 800


def our_refund(payment: Payment, *, amount=600, status="pending", provider_refund_id=None) -> Refund:
    return Refund.objects.create(payment=payment, amount=amount, currency="USD", provider="stripe", status=status,
                                 provider_refund_id=provider_refund_id)


def refund_event(event_type: str, payment: Payment, refund: Refund | None, *, status: str, amount=600,
                 provider_refund_id=None) -> dict:
    obj = refund_object(id=provider_refund_id or new_id("re"), amount=amount, charge=payment.provider_charge_id,
                        payment_intent=payment.provider_payment_id, status=status)
    if refund is not None:
        obj["metadata"] = {"refund_id": str(refund.pk), "payment_id": str(payment.pk)}
    return stripe_event(event_type, obj)


def test_refund_failed_releases_our_pending_refund_and_a_late_pending_message_does_not_hold_it_again(
        client, webhook_secret):
    payment = succeeded_card_payment()
    refund = our_refund(payment, provider_refund_id=new_id("re"))

    deliver(client, refund_event("refund.failed", payment, refund, status="failed",
                                 provider_refund_id=refund.provider_refund_id))
    deliver(client, refund_event("refund.created", payment, refund, status="pending",
                                 provider_refund_id=refund.provider_refund_id))

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == "failed" and refund.status_changes.get().reason.startswith("refund.failed")
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.SUCCEEDED, 0)
    assert list(StripeEvent.objects.order_by("id").values_list("status", flat=True)) == [
        ProviderEventStatus.PROCESSED, ProviderEventStatus.IGNORED]


def test_refund_updated_for_a_refund_we_gave_up_on_counts_it_when_stripe_made_it(client, webhook_secret):
    """A timeout left our refund failed although Stripe made it: Stripe's word wins, counted once."""
    payment = succeeded_card_payment()
    refund = our_refund(payment, status="failed")
    event = refund_event("refund.updated", payment, refund, status="succeeded")

    deliver(client, event)
    stripe_event_reprocess(event=StripeEvent.objects.get(), actor=ACTOR)

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, refund.provider_refund_id) == ("succeeded", event["data"]["object"]["id"])
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, 600)


def test_refund_events_not_ours_are_ignored_and_ours_not_yet_committed_fail_for_a_replay(client, webhook_secret):
    payment = succeeded_card_payment()

    deliver(client, refund_event("refund.updated", payment, None, status="succeeded"))
    missing = refund_event("refund.updated", payment, None, status="succeeded")
    missing["data"]["object"]["metadata"] = {"refund_id": "987654"}
    deliver(client, missing)

    assert list(StripeEvent.objects.order_by("id").values_list("status", flat=True)) == [
        ProviderEventStatus.IGNORED, ProviderEventStatus.FAILED]
    assert not Refund.objects.exists() and Payment.objects.get(pk=payment.pk).amount_refunded == 0


def test_a_refund_event_naming_our_refund_on_another_payment_intent_changes_nothing(client, webhook_secret):
    payment, other = succeeded_card_payment(), succeeded_card_payment()
    refund = our_refund(payment, status="requested")
    event = refund_event("refund.updated", other, refund, status="succeeded")

    deliver(client, event)

    refund.refresh_from_db()
    assert StripeEvent.objects.get().status == ProviderEventStatus.FAILED
    assert (refund.status, refund.provider_refund_id) == ("requested", None)
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 0


def test_charge_refunded_counts_a_dashboard_refund_beside_our_refund_in_flight_once_each(client, webhook_secret):
    """Our refund (requested, its Stripe answer not recorded) and a dashboard refund, both listed."""
    payment = succeeded_card_payment()
    ours = our_refund(payment, amount=500, status="requested")
    listed_ours = refund_object(id=new_id("re"), amount=500, charge=payment.provider_charge_id,
                                payment_intent=payment.provider_payment_id) | {
        "metadata": {"refund_id": str(ours.pk)}}
    dashboard = refund_object(id=new_id("re"), amount=300, charge=payment.provider_charge_id,
                              payment_intent=payment.provider_payment_id)
    event = stripe_event("charge.refunded", charge_object(
        id=payment.provider_charge_id, amount=2000, amount_refunded=800,
        payment_intent=payment.provider_payment_id, refunds=[dashboard, listed_ours]))

    deliver(client, event)
    stripe_event_reprocess(event=StripeEvent.objects.get(), actor=ACTOR)

    payment.refresh_from_db()
    ours.refresh_from_db()
    assert (ours.status, ours.provider_refund_id) == ("succeeded", listed_ours["id"])
    assert sorted(Refund.objects.values_list("amount", "status")) == [(300, "succeeded"), (500, "succeeded")]
    assert payment.amount_refunded == 800


# ----------------------------------------------------------------------------------------- disputes


def test_dispute_is_recorded_on_the_payment_audited_and_logged_once(
        client, webhook_secret, caplog, django_capture_on_commit_callbacks):
    payment = succeeded_card_payment()
    dispute = dispute_object(id=new_id("dp"), amount=2000, charge=payment.provider_charge_id,
                             payment_intent=payment.provider_payment_id)
    event = stripe_event("charge.dispute.created", dispute)

    with caplog.at_level(logging.ERROR, logger="payments.providers.stripe.sync"), \
            django_capture_on_commit_callbacks(execute=True):
        deliver(client, event)
        stripe_event_reprocess(event=StripeEvent.objects.get(), actor=ACTOR)

    payment.refresh_from_db()
    assert payment.metadata["disputes"][dispute["id"]]["reason"] == "fraudulent"
    assert payment.status == PaymentStatus.SUCCEEDED  # no money moves until the dispute is decided
    assert payment.status_changes.filter(reason__startswith=f"dispute {dispute['id']}").count() == 1
    assert caplog.text.count(f"Stripe dispute {dispute['id']} opened") == 1
    assert StripeEvent.objects.get().status == ProviderEventStatus.PROCESSED  # a replay keeps it processed


# ---------------------------------------------------------------------------------- saved cards


def test_setup_intent_succeeded_saves_the_default_card_and_a_late_older_one_does_not_replace_it(
        client, webhook_secret):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    t0 = int(time.time()) - 60

    deliver(client, stripe_event("setup_intent.succeeded", setup_intent_object(
        id=new_id("seti"), customer=stripe_account_id(customer), payment_method="pm_new"), created=t0 + 10))
    deliver(client, stripe_event("setup_intent.succeeded", setup_intent_object(
        id=new_id("seti"), customer=stripe_account_id(customer), payment_method="pm_old"), created=t0))

    customer.refresh_from_db()
    assert stripe_card(customer) == "pm_new"


def test_customer_updated_takes_the_default_card_chosen_in_stripe(client, webhook_secret):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"), stripe_default_payment_method_id="pm_old",
                               email="ours@example.com")

    deliver(client, stripe_event("customer.updated", customer_object(
        id=stripe_account_id(customer), email="theirs@example.com", default_payment_method="pm_portal"),
        previous_attributes={"invoice_settings": {"default_payment_method": "pm_old"}}))

    customer.refresh_from_db()
    assert stripe_card(customer) == "pm_portal"
    assert customer.email == "ours@example.com"  # our database is the source of truth for the rest


def test_off_session_charge_that_needs_the_customer_fails_for_dunning(client, webhook_secret):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    payment = Payment.objects.create(customer=customer, amount=700, currency="USD", method=PaymentMethod.STRIPE,
                                     provider="stripe",
                                     provider_payment_id=new_id("pi"))
    obj = payment_intent_object(id=payment.provider_payment_id, amount=700, status="requires_action",
                                customer=stripe_account_id(customer))

    deliver(client, stripe_event("payment_intent.payment_failed", obj))

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED and payment.failure_code == "authentication_required"


def test_gateway_reads_webhook_objects_into_the_same_dataclasses():
    obj = payment_intent_object(id="pi_1", amount=700, status="succeeded", latest_charge="ch_1",
                                customer="cus_1", metadata={"payment_id": "3"})

    intent = stripe_gateway.PaymentIntentResult.from_payload(obj)

    assert (intent.id, intent.status, intent.amount, intent.currency, intent.latest_charge_id, intent.customer_id) \
        == ("pi_1", "succeeded", 700, "USD", "ch_1", "cus_1")


def test_webhook_that_beats_the_charge_answer_finds_its_payment_by_metadata(client, webhook_secret):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    # invoice_collect committed the payment, Stripe charged, but our answer has not been recorded yet.
    payment = Payment.objects.create(customer=customer, amount=700, currency="USD", method=PaymentMethod.STRIPE,
                                     provider="stripe",
                                     collection_key="invoice-1-attempt-1")
    pi = new_id("pi")

    deliver(client, stripe_event("payment_intent.succeeded", payment_intent_object(
        id=pi, amount=700, status="succeeded", customer=stripe_account_id(customer), latest_charge=new_id("ch"),
        metadata={"payment_id": str(payment.pk)})))

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.provider_payment_id == pi


def test_webhook_naming_a_payment_we_do_not_have_fails_for_a_replay(client, webhook_secret):
    deliver(client, stripe_event("payment_intent.succeeded", payment_intent_object(
        id=new_id("pi"), amount=700, status="succeeded", metadata={"payment_id": "987654"})))

    event = StripeEvent.objects.get()
    assert event.status == ProviderEventStatus.FAILED and "payment #987654" in event.error
