"""The /webhooks/stripe/ inbox: verification, exactly-once storage and processing, ordering, replay."""

import itertools
import logging
import random
import time

import pytest
from django.core.management import call_command

from billing_project.tests.threads import race
from core.audit import Actor
from core.tests.jobs_support import jobs_run_queued
from payments.models import Invoice, Payment, PaymentMethod, PaymentStatus, ProviderEventStatus
from payments.providers.inbox import PROVIDER_EVENT_APPLY_TASK
from payments.providers.stripe.models import StripeEvent
from payments.providers.stripe.webhooks.selectors import webhook_rejection_count
from payments.providers.stripe.webhooks.services import stripe_event_process
from payments.services import subscription_start
from payments.tests.factories import StripeCustomerFactory
from payments.tests.stripe_support import (
    card_declined_error,
    charge_object,
    deliver,
    dispute_object,
    event_payload,
    new_id,
    payment_intent_object,
    setup_intent_object,
    stripe_account_id,
    stripe_account_set,
    stripe_card,
    stripe_event,
    stripe_signature,
)
from subscriptions.tests.factories import CustomerFactory, PlanFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
ACK_QUERIES = 5
# 42, plus the money rollups' share of a payment succeeding (payments.services.money_rollups): the payment
# summary's read before, read after and upsert; revenue's subscription lock and the same three.
APPLY_QUERIES = 42 + 7


def stripe_payment_for_new_invoice(amount=2500) -> Payment:
    """An open first invoice and the card payment collection created for it (as invoice_collect does)."""
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"), stripe_default_payment_method_id="pm_card_visa")
    plan = PlanFactory(amount=amount, trial_days=0)
    _, invoice = subscription_start(customer=customer, plan=plan, actor=ACTOR, with_trial=False)
    return Payment.objects.create(customer=customer, invoice=invoice, amount=invoice.amount_due,
                                  currency=invoice.currency, method=PaymentMethod.STRIPE, provider="stripe",
                                  provider_payment_id=new_id("pi"))


def succeeded_event(payment: Payment, *, created=None, charge=None):
    obj = payment_intent_object(id=payment.provider_payment_id, amount=payment.amount, status="succeeded",
                                customer=stripe_account_id(payment.customer), latest_charge=charge or new_id("ch"),
                                metadata={"payment_id": str(payment.pk)})
    return stripe_event("payment_intent.succeeded", obj, created=created)


# ------------------------------------------------------------------------------------ verification


@pytest.mark.parametrize("case", ["bad_signature", "stale_timestamp", "bad_json", "not_an_event", "no_header",
                                  "wrong_secret", "malformed_event"])
def test_untrustworthy_delivery_is_refused_with_400_and_nothing_is_stored(client, webhook_secret, case, caplog):
    payment = stripe_payment_for_new_invoice()
    payload = event_payload(succeeded_event(payment))
    kwargs = {}
    if case == "bad_signature":
        kwargs["signature"] = stripe_signature(payload).replace("v1=", "v1=0")
    elif case == "stale_timestamp":
        kwargs["timestamp"] = int(time.time()) - 301
    elif case == "bad_json":
        payload = b'{"id": "evt_1", "object": "event", '
    elif case == "not_an_event":
        payload = b'{"id": "ch_1", "object": "charge"}'
    elif case == "malformed_event":
        payload = event_payload({**succeeded_event(payment), "created": "yesterday"})
    elif case == "no_header":
        kwargs["signature"] = ""
    elif case == "wrong_secret":
        kwargs["secret"] = "whsec_someone_else"

    with caplog.at_level(logging.WARNING, logger="payments.providers.stripe.webhooks.services"):
        response = deliver(client, payload, **kwargs)

    assert response.status_code == 400
    assert response.json()["error"]
    assert not StripeEvent.objects.exists()
    assert Payment.objects.get().status == PaymentStatus.PENDING
    assert "Stripe webhook rejected" in caplog.text
    assert webhook_rejection_count() == 1


def test_missing_signing_secret_refuses_every_delivery(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payment = stripe_payment_for_new_invoice()

    response = deliver(client, succeeded_event(payment))

    assert response.status_code == 400 and response.json()["error"] == "webhook_secret_missing"
    assert not StripeEvent.objects.exists()


def test_only_post_is_accepted(client, webhook_secret):
    assert client.get("/webhooks/stripe/").status_code == 405


# ------------------------------------------------------------------------------------ exactly once


def test_duplicate_delivery_answers_200_and_is_applied_once(client, webhook_secret):
    payment = stripe_payment_for_new_invoice()
    event = succeeded_event(payment)

    first = deliver(client, event)
    second = deliver(client, event)

    payment.refresh_from_db()
    assert first.status_code == second.status_code == 200
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    assert StripeEvent.objects.get().attempts == 1
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.status_changes.count() == 1
    assert Invoice.objects.get().amount_paid == payment.amount


def test_a_delivery_and_its_duplicate_stay_within_their_query_budget(client, webhook_secret,
                                                                    django_assert_max_num_queries):
    payment = stripe_payment_for_new_invoice()
    event = succeeded_event(payment)

    # The acknowledgement: which modules are on (the webhook is the stripe module's door, read once per
    # process per MODULES_STATE_CACHE_SECONDS), the insert and its apply job in one savepoint (open, insert,
    # defer, release).
    with django_assert_max_num_queries(ACK_QUERIES):
        deliver(client, event, apply=False)
    # The job: read the event's rail, its type for provider look-ups (outside the transaction), lock, pay
    # the payment, settle the invoice, lock then read the subscription to activate it, refill its credits,
    # look for credit pack orders the period invoice billed, record the refill as the payment's credits
    # (PaymentCreditEntry), queue the receipt; for each of the four outbound webhook events (payment succeeded,
    # invoice paid, subscription updated, credits granted) read which endpoints want it; and the test's own
    # removal of the job from the queue; and the money rollups (APPLY_QUERIES).
    with django_assert_max_num_queries(APPLY_QUERIES):
        jobs_run_queued(task_name=PROVIDER_EVENT_APPLY_TASK)
    # A duplicate is refused by the unique event id: the insert in its savepoint, and one read for the answer.
    with django_assert_max_num_queries(5):
        deliver(client, event, apply=False)


def _run_together(count, target):
    outcome = race([target] * count, join_timeout=30)
    assert not outcome.errors, outcome.errors
    return outcome.results


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_concurrently_is_applied_once(webhook_secret):
    from django.test import Client

    payment = stripe_payment_for_new_invoice()
    event = succeeded_event(payment)

    responses = _run_together(4, lambda: deliver(Client(), event))

    payment.refresh_from_db()
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200]
    assert sorted(r.json()["duplicate"] for r in responses) == [False, True, True, True]
    assert StripeEvent.objects.count() == 1
    assert payment.status == PaymentStatus.SUCCEEDED and payment.status_changes.count() == 1
    assert Invoice.objects.get().amount_paid == payment.amount


@pytest.mark.django_db(transaction=True)
def test_a_stored_event_processed_concurrently_runs_its_handler_once():
    payment = stripe_payment_for_new_invoice()
    event = succeeded_event(payment)
    stored = StripeEvent.objects.create(event_id=event["id"], type=event["type"], payload=event)

    _run_together(3, lambda: stripe_event_process(event_pk=stored.pk, actor=ACTOR))

    stored.refresh_from_db()
    payment.refresh_from_db()
    assert stored.status == ProviderEventStatus.PROCESSED and stored.attempts == 1
    assert payment.status_changes.count() == 1


# ------------------------------------------------------------------------------------------ order


def payment_history(payment: Payment, t0: int) -> list[dict]:
    """What Stripe sends for one payment, in the order it happened: processing, a failed try, success on
    a retry, a partial refund made in the dashboard, then a dispute."""
    pi, charge, cus = payment.provider_payment_id, new_id("ch"), stripe_account_id(payment.customer)

    def intent(status, **extra):
        return payment_intent_object(id=pi, amount=payment.amount, status=status, customer=cus,
                                     metadata={"payment_id": str(payment.pk)}, **extra)

    return [
        stripe_event("payment_intent.processing", intent("processing"), created=t0 + 1),
        stripe_event("payment_intent.payment_failed",
                     intent("requires_payment_method", last_payment_error=card_declined_error(new_id("ch")),
                            payment_method=None), created=t0 + 2),
        stripe_event("payment_intent.succeeded", intent("succeeded", latest_charge=charge), created=t0 + 3),
        stripe_event("charge.refunded", charge_object(id=charge, amount=payment.amount, payment_intent=pi,
                                                      amount_refunded=700, customer=cus), created=t0 + 4),
        stripe_event("charge.dispute.created", dispute_object(id=new_id("dp"), amount=payment.amount - 700,
                                                              charge=charge, payment_intent=pi), created=t0 + 5),
    ]


def final_state(payment: Payment) -> tuple:
    payment.refresh_from_db()
    invoice = payment.invoice
    invoice.refresh_from_db()
    return (payment.status, payment.amount_refunded, payment.refunds.count(),
            len(payment.metadata.get("disputes", {})), invoice.status, invoice.amount_paid,
            invoice.subscription.status)


def test_shuffled_deliveries_end_in_the_same_state_as_ordered_ones(client, webhook_secret):
    t0 = int(time.time()) - 120
    ordered = stripe_payment_for_new_invoice()
    for event in payment_history(ordered, t0):
        assert deliver(client, event).status_code == 200
    expected = final_state(ordered)
    assert expected == ("partially_refunded", 700, 1, 1, "paid", 2500, "active")

    orders = list(itertools.permutations(range(5)))
    for order in [orders[-1], *random.Random(5).sample(orders[1:-1], 10)]:
        payment = stripe_payment_for_new_invoice()
        events = payment_history(payment, t0)
        for index in order:
            assert deliver(client, events[index]).status_code == 200
        assert final_state(payment) == expected, order
        statuses = set(StripeEvent.objects.filter(event_id__in=[e["id"] for e in events])
                       .values_list("status", flat=True))
        assert ProviderEventStatus.FAILED not in statuses


def test_late_processing_after_success_is_ignored_and_recorded(client, webhook_secret):
    payment = stripe_payment_for_new_invoice()
    t0 = int(time.time()) - 60
    deliver(client, succeeded_event(payment, created=t0 + 2))
    late = stripe_event("payment_intent.processing",
                        payment_intent_object(id=payment.provider_payment_id, amount=payment.amount,
                                              status="processing"), created=t0 + 1)

    response = deliver(client, late)

    payment.refresh_from_db()
    stored = StripeEvent.objects.get(event_id=late["id"])
    assert response.status_code == 200
    assert payment.status == PaymentStatus.SUCCEEDED
    assert stored.status == ProviderEventStatus.IGNORED and stored.error.startswith("stale")


def test_backwards_move_with_a_newer_timestamp_is_refused_by_the_state_machine(client, webhook_secret):
    payment = stripe_payment_for_new_invoice()
    t0 = int(time.time()) - 60
    deliver(client, succeeded_event(payment, created=t0))
    same_second = stripe_event("payment_intent.processing",
                               payment_intent_object(id=payment.provider_payment_id, amount=payment.amount,
                                                     status="processing"), created=t0)

    deliver(client, same_second)

    payment.refresh_from_db()
    stored = StripeEvent.objects.get(event_id=same_second["id"])
    assert payment.status == PaymentStatus.SUCCEEDED
    assert stored.status == ProviderEventStatus.IGNORED and stored.error.startswith("refused")


# ------------------------------------------------------------------------------- ignored, failed, replay


def test_unknown_event_type_is_stored_and_ignored(client, webhook_secret):
    event = stripe_event("invoice.finalized", {"id": new_id("in"), "object": "invoice"})

    response = deliver(client, event)

    stored = StripeEvent.objects.get()
    assert response.status_code == 200
    assert stored.status == ProviderEventStatus.IGNORED and stored.type == "invoice.finalized"
    assert stored.api_version == event["api_version"] and stored.payload == event


def test_event_for_a_payment_that_is_not_ours_is_ignored(client, webhook_secret):
    event = stripe_event("payment_intent.succeeded",
                         payment_intent_object(id=new_id("pi"), amount=100, status="succeeded"))

    deliver(client, event)

    assert StripeEvent.objects.get().status == ProviderEventStatus.IGNORED


def test_failed_handler_is_recorded_then_replay_applies_it(client, webhook_secret):
    # Stripe can deliver setup_intent.succeeded before our commit of the customer's Stripe id.
    customer = CustomerFactory()
    stripe_id = new_id("cus")
    event = stripe_event("setup_intent.succeeded",
                         setup_intent_object(id=new_id("seti"), customer=stripe_id, payment_method="pm_saved",
                                             metadata={"customer_id": str(customer.pk)}))

    response = deliver(client, event)
    stored = StripeEvent.objects.get()
    assert response.status_code == 200
    assert stored.status == ProviderEventStatus.FAILED and "ReferenceNotFound" in stored.error

    stripe_account_set(customer, customer_id=stripe_id)
    call_command("stripe_events", "replay", "--failed")

    stored.refresh_from_db()
    customer.refresh_from_db()
    assert stored.status == ProviderEventStatus.PROCESSED and stored.attempts == 2 and stored.error == ""
    assert stripe_card(customer) == "pm_saved"


NOT_EVENTS = {
    "a list": b"[]",
    "a string": b'"x"',
    "a number": b"1",
    "null data": b'{"id": "evt_1", "object": "event", "type": "invoice.paid", "data": null}',
    "no id": b'{"object": "event", "type": "invoice.paid", "data": {"object": {}}}',
    "no type": b'{"id": "evt_1", "object": "event", "data": {"object": {}}}',
    "nul in a value": b'{"id": "evt_1", "object": "event", "type": "x", "data": {"object": {"a": "\\u0000"}}}',
    "nul in a key": b'{"id": "evt_1", "object": "event", "type": "x", "data": {"object": {"\\u0000": 1}}}',
    "lone surrogate": b'{"id": "evt_1", "object": "event", "type": "x", "data": {"object": {"a": "\\ud800"}}}',
    "NaN": b'{"id": "evt_1", "object": "event", "type": "x", "data": {"object": {"a": NaN}}}',
    "deep": b'{"id": "evt_1", "object": "event", "type": "x", "data": {"object": {"a": ' + b"[" * 5000
            + b"]" * 5000 + b"}}}",
    "created past 9999": b'{"id": "evt_1", "object": "event", "type": "x", "created": 99999999999999, '
                         b'"data": {"object": {}}}',
    "created negative": b'{"id": "evt_1", "object": "event", "type": "x", "created": -99999999999999, '
                        b'"data": {"object": {}}}',
    "not UTF-8": b'{"id": "evt_1", "object": "event", "type": "x", "data": {"object": {"a": "\xff"}}}',
}


@pytest.mark.parametrize("body", NOT_EVENTS, ids=list(NOT_EVENTS))
def test_a_signed_body_that_is_not_a_storable_event_is_400_and_stores_nothing(client, webhook_secret, body):
    response = deliver(client, NOT_EVENTS[body])
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "payload_invalid"
    assert not StripeEvent.objects.exists()
