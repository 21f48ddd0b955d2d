"""The provider contract, once per rail (conftest.RAILS): charge, fail, refund, duplicate webhook,
shuffled webhook order, bad signature, provider 5xx and timeout. A rail without the capability a test
needs skips it with the reason; every rail that has it must pass."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.exceptions import CardDeclined, PaymentProviderError
from payments.models import PaymentStatus, RefundStatus
from payments.providers import Capability
from payments.services import payment_refund
from payments.tests.providers.contract.rails import requires
from subscriptions.tests.factories import CustomerFactory

P = PaymentStatus


def test_charge_collects_the_amount_off_session(rail, actor):
    requires(rail, Capability.OFF_SESSION_CHARGE)
    customer = CustomerFactory(user=None)
    payment = rail.charge(rail.pending_payment(customer, 2500), rail.account(customer), actor)
    payment.refresh_from_db()
    assert (payment.status, payment.amount) == (P.SUCCEEDED, 2500)
    assert rail.rail.payment_reference(payment=payment)


def test_a_declined_payment_method_raises_card_declined_and_charges_nothing(rail, actor):
    requires(rail, Capability.OFF_SESSION_CHARGE)
    customer = CustomerFactory(user=None)
    account = rail.account(customer, declining=True)
    payment = rail.pending_payment(customer, 1800)
    with pytest.raises(CardDeclined):
        rail.charge(payment, account, actor)
    payment.refresh_from_db()
    assert payment.status == P.PENDING and payment.amount_refunded == 0


@pytest.mark.parametrize(("amount", "status"), [(700, P.PARTIALLY_REFUNDED), (None, P.REFUNDED)])
def test_refund_partial_and_full(rail, actor, amount, status):
    customer = CustomerFactory(user=None)
    payment = rail.paid_payment(customer, 2000, actor)
    refund = payment_refund(payment=payment, actor=actor, amount=amount, idempotency_key=f"contract-{payment.pk}")
    payment.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert (payment.status, payment.amount_refunded) == (status, amount or 2000)


@pytest.mark.parametrize("mode", ["server_error", "timeout"])
def test_a_provider_failure_is_a_provider_error_and_changes_nothing(rail, actor, mode):
    requires(rail, Capability.OFF_SESSION_CHARGE)
    customer = CustomerFactory(user=None)
    account = rail.account(customer)
    payment = rail.pending_payment(customer, 1200)
    rail.fail_next(mode)
    with pytest.raises(PaymentProviderError):
        rail.charge(payment, account, actor)
    payment.refresh_from_db()
    assert payment.status == P.PENDING


def test_a_duplicate_webhook_is_stored_once_and_applied_once(rail, actor, client):
    requires(rail, Capability.WEBHOOKS)
    payment = rail.processing_payment(CustomerFactory(user=None), 1500, actor)
    event = rail.payment_event(payment, "succeeded", timezone.now())
    first, again = rail.deliver(client, event), rail.deliver(client, event)
    payment.refresh_from_db()
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["duplicate"] is True
    assert rail.events_stored() == 1
    assert payment.status == P.SUCCEEDED and payment.status_changes.filter(to_status=P.SUCCEEDED).count() == 1


def test_a_late_processing_message_never_overwrites_succeeded(rail, actor, client):
    requires(rail, Capability.WEBHOOKS)
    payment = rail.processing_payment(CustomerFactory(user=None), 1500, actor)
    now = timezone.now()
    rail.deliver(client, rail.payment_event(payment, "succeeded", now))
    rail.deliver(client, rail.payment_event(payment, "processing", now - timedelta(seconds=30)))
    payment.refresh_from_db()
    assert payment.status == P.SUCCEEDED


def test_a_refund_before_its_capture_is_kept_not_lost(rail, actor, client):
    requires(rail, Capability.WEBHOOKS)
    payment = rail.processing_payment(CustomerFactory(user=None), 1500, actor)
    now = timezone.now()
    rail.deliver(client, rail.refund_event(payment, 500, now))
    rail.deliver(client, rail.payment_event(payment, "succeeded", now - timedelta(seconds=30)))
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (P.PARTIALLY_REFUNDED, 500)


def test_a_bad_signature_is_refused_with_400_and_nothing_stored(rail, actor, client):
    requires(rail, Capability.WEBHOOKS)
    payment = rail.processing_payment(CustomerFactory(user=None), 1500, actor)
    response = rail.deliver(client, rail.payment_event(payment, "succeeded", timezone.now()), tamper=True)
    payment.refresh_from_db()
    assert response.status_code == 400
    assert rail.events_stored() == 0 and payment.status == P.PROCESSING


@pytest.mark.parametrize("mode", ["server_error", "timeout"])
def test_a_provider_failure_during_a_refund_fails_the_refund_and_keeps_the_payment(rail, actor, mode):
    requires(rail, Capability.REFUNDS)
    payment = rail.paid_payment(CustomerFactory(user=None), 2000, actor)
    rail.fail_next(mode)
    with pytest.raises(PaymentProviderError):
        payment_refund(payment=payment, actor=actor, amount=500, idempotency_key=f"contract-fail-{payment.pk}")
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (P.SUCCEEDED, 0)
    assert payment.refunds.get().status == RefundStatus.FAILED


def test_reconciliation_finds_a_lost_status_and_fix_applies_it(rail, actor):
    from datetime import timedelta

    from payments.reconciliation import STATUS_DIFFERS, reconcile_compare, reconcile_fix

    requires(rail, Capability.RECONCILIATION)
    payment = rail.drifted_payment(CustomerFactory(user=None), 1700, actor)
    window = {"since": timezone.now() - timedelta(hours=1), "until": timezone.now() + timedelta(minutes=1)}
    drifts = [d for d in reconcile_compare(rail=rail.rail, **window) if d.payment_id == payment.pk]
    assert [d.kind for d in drifts] == [STATUS_DIFFERS] and payment.status == P.PROCESSING
    assert reconcile_fix(rail=rail.rail, drifts=drifts, actor=actor) == drifts
    payment.refresh_from_db()
    assert payment.status == P.SUCCEEDED
    assert not [d for d in reconcile_compare(rail=rail.rail, **window) if d.payment_id == payment.pk]


# A merchant of record bills by itself: we mirror instead of charging.


def test_a_merchant_of_record_subscription_is_mirrored_and_never_charged_by_our_run(rail, actor):
    from payments.billing.run import billing_run
    from payments.models import Invoice, Payment
    from subscriptions.models import Subscription

    requires(rail, Capability.MERCHANT_OF_RECORD)
    customer = CustomerFactory(user=None)
    for event in rail.mirror_events(customer, 2200):
        rail.deliver(None, event)
    subscription = Subscription.objects.get(customer=customer)
    assert subscription.billed_by == rail.code and subscription.status == "active"
    before = (Invoice.objects.filter(customer=customer).count(), Payment.objects.filter(customer=customer).count())
    billing_run(as_of=timezone.now() + timedelta(days=800), actor=actor)
    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert (Invoice.objects.filter(customer=customer).count(), Payment.objects.filter(customer=customer).count()) \
        == before == (1, 1)


def test_merchant_of_record_events_duplicated_and_reversed_apply_once(rail, actor, client):
    from payments.models import Invoice, Payment

    requires(rail, Capability.MERCHANT_OF_RECORD)
    customer = CustomerFactory(user=None)
    events = rail.mirror_events(customer, 1900)
    responses = [rail.deliver(client, event) for event in [*reversed(events), *events]]
    assert [r.status_code for r in responses] == [200] * len(responses)
    assert [r.json()["duplicate"] for r in responses] == [False] * len(events) + [True] * len(events)
    assert rail.events_stored() == len(events)
    assert Invoice.objects.filter(customer=customer).count() == 1
    assert Payment.objects.get(customer=customer).amount == 1900


def test_a_merchant_of_record_bad_signature_is_refused_with_400_and_nothing_stored(rail, client):
    requires(rail, Capability.MERCHANT_OF_RECORD)
    event = rail.mirror_events(CustomerFactory(user=None), 1500)[1]
    response = rail.deliver(client, event, tamper=True)
    assert response.status_code == 400 and rail.events_stored() == 0


def test_a_merchant_of_record_refund_reported_after_ours_is_not_counted_twice(rail, actor):
    requires(rail, Capability.MERCHANT_OF_RECORD)
    payment = rail.paid_payment(CustomerFactory(user=None), 2000, actor)
    payment_refund(payment=payment, actor=actor, amount=800, idempotency_key=f"contract-mor-{payment.pk}")
    for event in list(rail.peer.sent):
        rail.deliver(None, event)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (P.PARTIALLY_REFUNDED, 800)
