"""The collection step's charged path against localstripe: invoices with a saved card are leased in the
batch transaction and charged outside any transaction, and their outcome is recorded under a fresh lock."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from core.audit import Actor
from core.exceptions import CardDeclined
from payments import collection
from payments.billing.run import billing_run
from payments.models import Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from payments.providers.manual.services import payment_record_manual
from payments.providers.stripe import gateway as stripe_gateway
from payments.tests.conftest import make_due_subscription
from payments.tests.test_collection import save_card
from subscriptions.models import SubscriptionStatus
from subscriptions.tests.factories import CustomerFactory

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=600)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class _Killed(Exception):
    """Stands for the run's process dying at that point."""


@pytest.fixture
def lease(settings):
    settings.BILLING_COLLECTION_LEASE_SECONDS = int(LEASE.total_seconds())
    return LEASE


@pytest.fixture
def gateway_calls(monkeypatch):
    """Wrap the real off-session charge: records (inside a transaction?, idempotency key) per call and runs
    `before`/`after` hooks the test sets."""
    real = stripe_gateway.payment_intent_charge_off_session
    calls, hooks = [], {}

    def wrapped(**kwargs):
        calls.append((connection.in_atomic_block, kwargs["idempotency_key"]))
        try:
            intent = real(**kwargs)
        except CardDeclined:
            if "declined" in hooks:
                hooks["declined"]()
            raise
        if "after" in hooks:
            hooks["after"]()
        return intent

    monkeypatch.setattr(stripe_gateway, "payment_intent_charge_off_session", wrapped)
    return calls, hooks


def _card_subscription(stripe_api, payment_method="pm_card_visa"):
    customer = CustomerFactory(user=None)
    save_card(stripe_api, customer, payment_method=payment_method)
    return make_due_subscription(customer=customer)


def test_charge_happens_outside_any_transaction_and_pays_the_invoice(stripe_api, lease, gateway_calls):
    calls, _ = gateway_calls
    sub = _card_subscription(stripe_api)

    summary = billing_run(as_of=FEB_28)

    invoice = Invoice.objects.get(subscription=sub)
    sub.refresh_from_db()
    assert calls == [(False, f"invoice-{invoice.pk}-attempt-1")]
    assert summary.counts["collected"] == 1 and summary.counts.get("failed", 0) == 0
    assert invoice.status == InvoiceStatus.PAID and invoice.attempt_count == 0 and invoice.next_attempt_at is None
    assert sub.status == SubscriptionStatus.ACTIVE
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == PaymentStatus.SUCCEEDED and payment.provider_payment_id.startswith("pi_")


def test_declined_charge_counts_one_attempt_and_schedules_the_retry(stripe_api, lease, gateway_calls):
    calls, _ = gateway_calls
    sub = _card_subscription(stripe_api, payment_method="pm_card_chargeCustomerFail")

    summary = billing_run(as_of=FEB_28)

    invoice = Invoice.objects.get(subscription=sub)
    sub.refresh_from_db()
    assert [in_transaction for in_transaction, _ in calls] == [False]
    assert summary.counts["failed"] == 1
    assert invoice.status == InvoiceStatus.OPEN and invoice.attempt_count == 1
    assert invoice.next_attempt_at == FEB_28 + timedelta(days=1)  # the retry schedule, not the lease
    assert sub.status == SubscriptionStatus.PAST_DUE


def test_invoice_paid_elsewhere_while_stripe_answers_stays_paid_and_counts_no_failure(stripe_api, lease,
                                                                                      gateway_calls):
    _, hooks = gateway_calls
    sub = _card_subscription(stripe_api, payment_method="pm_card_chargeCustomerFail")

    def pay_from_another_connection():
        def pay():
            try:
                invoice = Invoice.objects.get(subscription=sub)
                payment_record_manual(customer=invoice.customer, amount=invoice.amount_due,
                                      method=PaymentMethod.BANK_TRANSFER, actor=Actor.system("test"),
                                      invoice=invoice)
            finally:
                connection.close()

        thread = threading.Thread(target=pay)
        thread.start()
        thread.join()

    # The card is declined, but before the run records the failure the invoice is paid (as a webhook or a
    # staff member would), in a transaction of its own that must not wait for the run.
    hooks["declined"] = pay_from_another_connection

    summary = billing_run(as_of=FEB_28)

    invoice = Invoice.objects.get(subscription=sub)
    sub.refresh_from_db()
    assert summary.counts.get("failed", 0) == 0 and summary.counts["collection_skipped"] == 1
    assert invoice.status == InvoiceStatus.PAID and invoice.attempt_count == 0
    assert sub.status == SubscriptionStatus.ACTIVE


def test_run_killed_after_stripe_charged_is_finished_after_the_lease_with_the_same_key(stripe_api, lease,
                                                                                         gateway_calls):
    calls, hooks = gateway_calls
    sub = _card_subscription(stripe_api)

    def killed():
        raise _Killed

    hooks["after"] = killed
    with pytest.raises(_Killed):
        billing_run(as_of=FEB_28)

    invoice = Invoice.objects.get(subscription=sub)
    assert invoice.status == InvoiceStatus.OPEN and invoice.attempt_count == 0
    assert invoice.next_attempt_at == FEB_28 + lease  # leased: no other run takes it meanwhile
    assert Payment.objects.get(invoice=invoice).status == PaymentStatus.PENDING  # committed before the call

    del hooks["after"]
    early = billing_run(as_of=FEB_28 + lease - timedelta(seconds=1))
    assert len(calls) == 1 and early.counts.get("collected", 0) == 0

    summary = billing_run(as_of=FEB_28 + lease)

    invoice.refresh_from_db()
    assert summary.counts["collected"] == 1
    assert [key for _, key in calls] == [f"invoice-{invoice.pk}-attempt-1"] * 2  # Stripe answers the first charge
    assert invoice.status == InvoiceStatus.PAID and invoice.attempt_count == 0
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == PaymentStatus.SUCCEEDED and payment.amount == invoice.total


def test_run_killed_before_recording_a_decline_records_it_once_after_the_lease(stripe_api, lease, gateway_calls,
                                                                               monkeypatch):
    calls, _ = gateway_calls
    sub = _card_subscription(stripe_api, payment_method="pm_card_chargeCustomerFail")
    real_collect = collection.invoice_collect

    def collect_then_die(**kwargs):
        real_collect(**kwargs)
        raise _Killed

    monkeypatch.setattr(collection, "invoice_collect", collect_then_die)
    with pytest.raises(_Killed):
        billing_run(as_of=FEB_28)
    monkeypatch.setattr(collection, "invoice_collect", real_collect)
    invoice = Invoice.objects.get(subscription=sub)
    assert invoice.attempt_count == 0 and invoice.next_attempt_at == FEB_28 + lease

    summary = billing_run(as_of=FEB_28 + lease)

    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert len(calls) == 1  # the attempt already ran: its stored answer is recorded, Stripe is not asked again
    assert summary.counts["failed"] == 1
    assert invoice.attempt_count == 1 and invoice.next_attempt_at == FEB_28 + lease + timedelta(days=1)
    assert sub.status == SubscriptionStatus.PAST_DUE
    assert Payment.objects.get(invoice=invoice).status == PaymentStatus.FAILED


def test_cards_and_no_cards_in_one_batch_each_take_their_path(stripe_api, lease, gateway_calls):
    calls, _ = gateway_calls
    carded = _card_subscription(stripe_api)
    bare = make_due_subscription(customer=CustomerFactory(user=None))

    summary = billing_run(as_of=FEB_28)

    assert summary.counts["collected"] == 1 and summary.counts["failed"] == 1 and len(calls) == 1
    assert Invoice.objects.get(subscription=carded).status == InvoiceStatus.PAID
    bare_invoice = Invoice.objects.get(subscription=bare)
    assert bare_invoice.attempt_count == 1 and bare_invoice.next_attempt_at == FEB_28 + timedelta(days=1)
    assert not Payment.objects.filter(invoice=bare_invoice).exists()


def test_dry_run_counts_the_cards_it_would_charge_and_calls_stripe_never(stripe_api, lease, gateway_calls):
    calls, _ = gateway_calls
    sub = _card_subscription(stripe_api)

    summary = billing_run(as_of=FEB_28, dry_run=True)

    assert calls == []
    assert summary.counts["to_charge"] == 1 and summary.counts.get("collected", 0) == 0
    assert not Invoice.objects.filter(subscription=sub).exists()
    assert not Payment.objects.exists()
