"""One handler per PayPal event type. Each reads `event.payload["resource"]` into this package's
dataclasses, locks what it changes, and says whether it changed anything and why not.

Handlers are safe to run again (replay): payments move through the shared state machine ordered by the
capture's own update_time, refunds are found by PayPal's refund id or our custom_id and only move forward,
wallets are set through the provider account's newest-message-wins guard. A handler raises when the event
names a row of ours that is not (yet) there: the event is marked failed and a replay applies it later.

Events handled (subscribe the webhook to these): PAYMENT.CAPTURE.COMPLETED|PENDING|DECLINED|DENIED,
PAYMENT.CAPTURE.REFUNDED, CHECKOUT.ORDER.APPROVED, VAULT.PAYMENT-TOKEN.CREATED|DELETED.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _

from core.audit import Actor
from payments.models import Payment, PaymentMethod, Refund, RefundStatus
from payments.providers.paypal import client, services, sync
from payments.providers.paypal.models import PAYPAL, PayPalEvent
from payments.providers.paypal.payloads import PayPalCapture, PayPalOrder, PayPalPaymentToken, PayPalRefund
from payments.services import payment_lock, payment_refund_apply, refund_counted


@dataclass(frozen=True)
class Outcome:
    applied: bool
    note: str = ""


class ReferenceNotFound(LookupError):
    """The event names a row of ours that is not (yet) there."""


def _resource(event: PayPalEvent) -> dict:
    return event.payload["resource"]


def _reason(event: PayPalEvent) -> str:
    return f"{event.type} ({event.event_id})"


def _observed_at(event: PayPalEvent) -> datetime:
    return event.provider_created_at or event.received_at


def _payment_for_capture(capture: PayPalCapture) -> Payment | None:
    payments = Payment.objects.filter(provider=PAYPAL)
    found = payments.filter(provider_charge_id=capture.id).values_list("pk", flat=True).first()
    if found is None and capture.order_id:
        found = payments.filter(provider_payment_id=capture.order_id).values_list("pk", flat=True).first()
    our_id = sync.payment_id_from_custom_id(capture.custom_id)
    if found is None and our_id is not None:
        # Collection stores the order id after PayPal answers; our id in custom_id finds the payment when
        # the webhook wins that race (or the answer was lost to a timeout).
        found = Payment.objects.filter(pk=our_id, method=PaymentMethod.PAYPAL).values_list("pk", flat=True).first()
        if found is None:
            raise ReferenceNotFound(_("payment #%(payment)s named by capture %(capture)s does not exist")
                                    % {"payment": our_id, "capture": capture.id})
    invoice_id = sync.invoice_id_from_custom_id(capture.custom_id)
    if found is None and invoice_id is not None and capture.order_id:
        try:
            found = services.checkout_payment_get_or_create(invoice_id=invoice_id, order_id=capture.order_id,
                                                            amount=capture.amount, currency=capture.currency)
        except LookupError as exc:
            raise ReferenceNotFound(str(exc)) from exc
    return payment_lock(payment_id=found) if found is not None else None


def handle_capture(*, event: PayPalEvent, actor: Actor) -> Outcome:
    """PAYMENT.CAPTURE.*: the capture's own status says where the payment is, as of its update_time."""
    capture = PayPalCapture.from_payload(_resource(event))
    payment = _payment_for_capture(capture)
    if payment is None:
        return Outcome(False, f"no payment of ours for capture {capture.id}")
    result = sync.payment_sync_capture(payment=payment, capture=capture, actor=actor, reason=_reason(event))
    return Outcome(result.applied, result.note)


def _refund_record_external(*, payment: Payment, paypal_refund: PayPalRefund, actor: Actor, reason: str) -> bool:
    """A refund made in PayPal itself (not through us): a Refund row with PayPal's id, counted once."""
    status = paypal_refund.refund_status
    if status not in (RefundStatus.SUCCEEDED, RefundStatus.PENDING):
        return False
    fits = paypal_refund.amount <= payment.amount - payment.amount_refunded
    refund = Refund(payment=payment, amount=paypal_refund.amount, currency=payment.currency, provider=PAYPAL,
                    provider_refund_id=paypal_refund.id, status=status if fits else RefundStatus.FAILED,
                    reason=f"refunded in PayPal ({paypal_refund.id})")
    refund.stamp(actor)
    refund.save()
    refund_counted(refund_id=refund.pk)
    if fits and status == RefundStatus.SUCCEEDED:
        payment_refund_apply(payment=payment, amount=refund.amount, actor=actor, reason=reason,
                             provider_data={"provider": PAYPAL, "refund": paypal_refund.id})
    return True


def handle_refund(*, event: PayPalEvent, actor: Actor) -> Outcome:
    """PAYMENT.CAPTURE.REFUNDED (the resource is the refund): settle our refund, or record one made in
    PayPal. A refund overtaking its capture's own message first records the capture's success."""
    paypal_refund = PayPalRefund.from_payload(_resource(event))
    ours = (Refund.objects.filter(provider=PAYPAL, provider_refund_id=paypal_refund.id).first()
            or Refund.objects.filter(pk=sync.refund_id_from_custom_id(paypal_refund.custom_id) or 0).first())
    if ours is None and sync.refund_id_from_custom_id(paypal_refund.custom_id) is not None:
        raise ReferenceNotFound(_("refund named by %(reference)s does not exist")
                                % {"reference": paypal_refund.custom_id})
    payment_id = ours.payment_id if ours is not None else (
        Payment.objects.filter(provider=PAYPAL, provider_charge_id=paypal_refund.capture_id)
        .values_list("pk", flat=True).first())
    if payment_id is None:
        return Outcome(False, f"no payment of ours for capture {paypal_refund.capture_id}")
    payment = payment_lock(payment_id=payment_id)
    collected = sync.payment_collected_before_refund(payment=payment, result=paypal_refund, actor=actor)
    if ours is None:
        applied = _refund_record_external(payment=payment, paypal_refund=paypal_refund, actor=actor,
                                          reason=_reason(event))
    else:
        ours = Refund.objects.get(pk=ours.pk)
        applied = sync.refund_apply_paypal(payment=payment, refund=ours, result=paypal_refund, actor=actor,
                                           reason=_reason(event))
    notes = [collected.note if collected else "", "" if applied else f"refund {paypal_refund.id} already counted"]
    return Outcome(applied or bool(collected and collected.applied), "; ".join(n for n in notes if n))


@dataclass(frozen=True)
class CaptureAnswer:
    """What capturing an approved order of ours answered, asked before the event's transaction opens."""

    order: PayPalOrder | None = None
    error: Exception | None = None
    # Why PayPal was not asked, for the event's note.
    skipped: str = ""


def approved_order_capture(*, event: PayPalEvent) -> CaptureAnswer:
    """Capture an order of ours the payer approved (the same request id whoever asks, so a redelivery or a
    replay gets the same capture). Runs outside any transaction; an error fails the event for a replay."""
    order = PayPalOrder.from_payload(_resource(event))
    if sync.invoice_id_from_custom_id(order.custom_id) is None:
        return CaptureAnswer(skipped=f"order {order.id} was not opened by us")
    if not client.is_configured():
        return CaptureAnswer(skipped="not captured: PayPal is not configured")
    try:
        return CaptureAnswer(order=client.order_capture(order_id=order.id, request_id=f"capture-{order.id}"))
    except Exception as exc:  # recorded on the event by the handler, which runs under the event's lock
        return CaptureAnswer(error=exc)


def handle_order_approved(*, event: PayPalEvent, actor: Actor, prepared: CaptureAnswer | None = None) -> Outcome:
    """CHECKOUT.ORDER.APPROVED for one of our checkout orders: record its capture against the invoice (which
    pays it, activating a subscription or granting a credit pack) and keep a vaulted wallet for renewals."""
    if prepared is None or prepared.order is None:
        if prepared is not None and prepared.error is not None:
            raise prepared.error
        return Outcome(False, prepared.skipped if prepared else "nothing captured")
    try:
        result = services.checkout_order_record(order=prepared.order, observed_at=_observed_at(event), actor=actor,
                                                reason=_reason(event))
    except LookupError as exc:
        raise ReferenceNotFound(str(exc)) from exc
    if result is None:
        return Outcome(False, f"order {prepared.order.id} has no capture of ours")
    return Outcome(result.applied, result.note)


def handle_payment_token(*, event: PayPalEvent, actor: Actor) -> Outcome:
    """VAULT.PAYMENT-TOKEN.CREATED / DELETED: the customer's saved wallet, newest message wins."""
    token = PayPalPaymentToken.from_payload(_resource(event))
    deleted = event.type.endswith("DELETED")
    changed = services.wallet_default_set(customer_reference=token.customer_reference, vault_id=token.id,
                                          deleted=deleted, observed_at=_observed_at(event), actor=actor)
    if changed is None:
        return Outcome(False, f"no customer of ours is {token.customer_reference or '(none)'} in PayPal")
    return Outcome(changed, "" if changed else f"wallet {token.id} already {'removed' if deleted else 'saved'}")


# PayPal calls a handler needs, made before the event's transaction opens (their answer is `prepared`).
PREPARERS: dict[str, Callable[..., object]] = {
    "CHECKOUT.ORDER.APPROVED": approved_order_capture,
}

HANDLERS: dict[str, Callable[..., Outcome]] = {
    "PAYMENT.CAPTURE.COMPLETED": handle_capture,
    "PAYMENT.CAPTURE.PENDING": handle_capture,
    "PAYMENT.CAPTURE.DECLINED": handle_capture,
    "PAYMENT.CAPTURE.DENIED": handle_capture,
    "PAYMENT.CAPTURE.REFUNDED": handle_refund,
    "CHECKOUT.ORDER.APPROVED": handle_order_approved,
    "VAULT.PAYMENT-TOKEN.CREATED": handle_payment_token,
    "VAULT.PAYMENT-TOKEN.DELETED": handle_payment_token,
}
