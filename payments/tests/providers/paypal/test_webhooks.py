"""/webhooks/paypal/ end to end against the loopback PayPal: verified, stored once per event id in the
shared inbox, applied order-proof through the payment state machine, replayable; and what each handler
does (payments/providers/paypal/webhooks/)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from core.tests.jobs_support import jobs_run_queued
from payments.models import InvoiceStatus, Payment, PaymentStatus, ProviderEventStatus, RefundStatus
from payments.providers.inbox import PROVIDER_EVENT_APPLY_TASK
from payments.providers.paypal.models import PayPalEvent
from payments.providers.paypal.webhooks.services import paypal_event_replay
from payments.selectors.provider_accounts import provider_account_get
from payments.services import payment_refund
from payments.tests.providers.paypal.support import charged_payment, one_off_invoice

pytestmark = pytest.mark.django_db
P = PaymentStatus


def deliver(client, peer, event, **signing):
    """POST a signed delivery, then run the apply job it queued, as a worker would."""
    body, headers = peer.signed(event, **signing)
    response = client.post("/webhooks/paypal/", data=body, content_type="application/json", headers=headers)
    jobs_run_queued(task_name=PROVIDER_EVENT_APPLY_TASK)
    return response


def stored_status(response) -> str:
    """The event's status once its apply job ran (the answer itself says "pending": a worker applies it)."""
    assert response.json()["status"] == ProviderEventStatus.PENDING
    return PayPalEvent.objects.get(event_id=response.json()["id"]).status


def at(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pending_payment(peer, actor) -> Payment:
    peer.capture_status = "PENDING"
    payment = charged_payment(peer, actor)
    peer.capture_status = "COMPLETED"
    payment.refresh_from_db()
    return payment


def capture_event(peer, payment, status, moment):
    capture = dict(peer.captures[payment.provider_charge_id], status=status, update_time=at(moment))
    return peer.webhook(f"PAYMENT.CAPTURE.{status}", capture, create_time=at(moment))


def test_a_signed_capture_completed_pays_the_processing_payment(client, paypal_api, actor):
    payment = pending_payment(paypal_api, actor)
    assert payment.status == P.PROCESSING
    response = deliver(client, paypal_api, capture_event(paypal_api, payment, "COMPLETED", timezone.now()))
    payment.refresh_from_db()
    assert response.status_code == 200 and stored_status(response) == ProviderEventStatus.PROCESSED
    assert payment.status == P.SUCCEEDED


def test_a_redelivery_is_answered_without_doing_anything(client, paypal_api, actor):
    payment = pending_payment(paypal_api, actor)
    event = capture_event(paypal_api, payment, "COMPLETED", timezone.now())
    deliver(client, paypal_api, event)
    again = deliver(client, paypal_api, event)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert PayPalEvent.objects.filter(event_id=event["id"]).count() == 1


@pytest.mark.parametrize("broken", ["header", "cert_url", "webhook_id", "body"])
def test_an_unverifiable_delivery_is_a_400_and_nothing_is_stored(client, paypal_api, actor, broken):
    event = paypal_api.webhook("PAYMENT.CAPTURE.COMPLETED", {"id": "CAP-X", "status": "COMPLETED"})
    body, headers = paypal_api.signed(event, **({"cert_url": "https://evil.example/c.pem"} if broken == "cert_url"
                                                 else {"webhook_id": "OTHER"} if broken == "webhook_id" else {}))
    if broken == "header":
        del headers["PAYPAL-TRANSMISSION-SIG"]
    if broken == "body":
        body = body.replace(b"COMPLETED", b"REFUNDED")
    response = client.post("/webhooks/paypal/", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400 and response.json()["error"]
    assert not PayPalEvent.objects.exists()


def test_a_late_pending_never_overwrites_completed(client, paypal_api, actor):
    payment = pending_payment(paypal_api, actor)
    now = timezone.now()
    deliver(client, paypal_api, capture_event(paypal_api, payment, "COMPLETED", now))
    late = deliver(client, paypal_api, capture_event(paypal_api, payment, "PENDING", now - timedelta(minutes=5)))
    payment.refresh_from_db()
    assert payment.status == P.SUCCEEDED and stored_status(late) == ProviderEventStatus.IGNORED


def test_a_refund_of_ours_settles_once_whichever_message_comes_first(client, paypal_api, actor):
    payment = charged_payment(paypal_api, actor, amount=3000)
    paypal_api.refund_status = "PENDING"
    refund = payment_refund(payment=payment, actor=actor, amount=1000, idempotency_key="pending-refund")
    assert refund.status == RefundStatus.PENDING
    done = paypal_api.refund_set_status(refund.provider_refund_id, "COMPLETED")
    event = paypal_api.webhook("PAYMENT.CAPTURE.REFUNDED", done)
    deliver(client, paypal_api, event)
    deliver(client, paypal_api, paypal_api.webhook("PAYMENT.CAPTURE.REFUNDED", done))  # another event, same refund
    payment.refresh_from_db()
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert (payment.status, payment.amount_refunded) == (P.PARTIALLY_REFUNDED, 1000)


def test_a_refund_before_its_capture_is_kept_and_the_late_capture_changes_nothing(client, paypal_api, actor):
    payment = pending_payment(paypal_api, actor)
    refund = paypal_api.capture_refund(payment.provider_charge_id, {"amount": {"currency_code": "USD",
                                                                               "value": "5.00"}})[1]
    deliver(client, paypal_api, paypal_api.webhook("PAYMENT.CAPTURE.REFUNDED", refund))
    deliver(client, paypal_api, capture_event(paypal_api, payment, "COMPLETED", timezone.now() - timedelta(hours=1)))
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (P.PARTIALLY_REFUNDED, 500)
    assert payment.refunds.get().provider_refund_id == refund["id"]


def test_an_event_naming_a_row_not_there_yet_fails_and_a_replay_applies_it(client, paypal_api, actor):
    payment = pending_payment(paypal_api, actor)
    capture = dict(paypal_api.captures[payment.provider_charge_id], status="COMPLETED", custom_id="payment-999999999",
                   id="CAP-NOT-OURS-YET", supplementary_data={"related_ids": {"order_id": "ORD-NOT-OURS-YET"}})
    response = deliver(client, paypal_api, paypal_api.webhook("PAYMENT.CAPTURE.COMPLETED", capture))
    assert response.status_code == 200 and stored_status(response) == ProviderEventStatus.FAILED
    Payment.objects.filter(pk=payment.pk).update(provider_charge_id="CAP-NOT-OURS-YET")
    replayed = paypal_event_replay(actor=actor, failed_only=True)
    payment.refresh_from_db()
    assert [e.status for e in replayed] == [ProviderEventStatus.PROCESSED] and payment.status == P.SUCCEEDED


def test_an_approved_checkout_order_is_captured_pays_the_invoice_and_saves_the_wallet(client, paypal_api, actor):
    from payments.checkout import checkout_invoice_start

    invoice = one_off_invoice(actor, amount=4500)
    start = checkout_invoice_start(invoice=invoice, actor=actor, success_url="https://shop.test/ok",
                                   cancel_url="https://shop.test/no", provider="paypal")
    paypal_api.approve_order(start.session.reference)
    order = paypal_api.orders[start.session.reference]
    response = deliver(client, paypal_api, paypal_api.webhook("CHECKOUT.ORDER.APPROVED", json.loads(json.dumps(order))))
    invoice.refresh_from_db()
    payment = invoice.payments.get()
    assert stored_status(response) == ProviderEventStatus.PROCESSED
    assert invoice.status == InvoiceStatus.PAID and (payment.provider, payment.status) == ("paypal", P.SUCCEEDED)
    # The capture's own webhook, arriving after, is the same payment already applied.
    capture = paypal_api.captures[payment.provider_charge_id]
    deliver(client, paypal_api, paypal_api.webhook("PAYMENT.CAPTURE.COMPLETED", capture))
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_vault_events_set_and_clear_the_default_wallet(client, paypal_api, actor):
    from payments.providers.paypal.services import customer_paypal_ensure
    from subscriptions.tests.factories import CustomerFactory

    customer = CustomerFactory()
    account = customer_paypal_ensure(customer=customer)
    token = {"id": "PT-1", "customer": {"id": account.provider_customer_id}}
    now = timezone.now()
    deliver(client, paypal_api, paypal_api.webhook("VAULT.PAYMENT-TOKEN.CREATED", token, create_time=at(now)))
    assert provider_account_get(customer=customer, provider="paypal").default_payment_method_id == "PT-1"
    customer.refresh_from_db()
    deliver(client, paypal_api, paypal_api.webhook("VAULT.PAYMENT-TOKEN.DELETED", token,
                                                   create_time=at(now + timedelta(seconds=5))))
    customer.refresh_from_db()
    assert provider_account_get(customer=customer, provider="paypal").default_payment_method_id == ""


def test_paypal_events_replay_reprocesses_failed_events_and_exits_1_while_any_still_fails(client, paypal_api):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    capture = {"id": "CAP-LOST", "status": "COMPLETED", "custom_id": "payment-999999998",
               "amount": {"currency_code": "USD", "value": "1.00"}}
    deliver(client, paypal_api, paypal_api.webhook("PAYMENT.CAPTURE.COMPLETED", capture))
    with pytest.raises(CommandError, match="1 event"):
        call_command("paypal_events", "replay", "--failed")
    assert PayPalEvent.objects.get().attempts == 2
    # /healthz reads sections in threads of their own, which do not see this test's uncommitted rows.
    from payments.providers.paypal.health import paypal_health
    assert paypal_health().details["events_failed_last_hour"] == 1
