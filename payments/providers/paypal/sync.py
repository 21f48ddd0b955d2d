"""Apply what PayPal says about a payment or a refund (an API answer or a webhook) to our locked rows,
order-proof, through the payment state machine every rail shares (payments/services/payment_sync.py).

- A capture's own `update_time` orders its messages (`Payment.provider_updated_at`): a PENDING written
  before the COMPLETED we applied is stale, and the state machine refuses backwards moves anyway.
- A refund reported for a payment we still hold as pending or processing proves the capture completed:
  that success is recorded first, then the refund, so a refund that overtakes its capture is kept.
- A refund's status only moves forward and is counted against its payment once, whichever of the API
  answer and the webhook comes first.
Where PayPal's ids live on our rows is decided here and nowhere else (`payment_ids_remember`).
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import InvalidOperation
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.providers.paypal.payloads import CAPTURE_STATUS, PayPalCapture, PayPalOrder, PayPalRefund
from payments.services import ALLOWED_REFUND_TRANSITIONS, payment_refund_apply, refund_transition
from payments.services.payment_sync import COLLECTED_STATUSES, SyncResult, observed_now, payment_sync_status

P = PaymentStatus
PROVIDER = "paypal"


def custom_id_for_payment(payment_id: int) -> str:
    """What we put in a purchase unit's custom_id: PayPal echoes it on the capture and its webhooks."""
    return f"payment-{payment_id}"


def custom_id_for_refund(refund_id: int) -> str:
    return f"refund-{refund_id}"


def _our_id(custom_id: str, prefix: str) -> int | None:
    value = custom_id.removeprefix(f"{prefix}-") if custom_id.startswith(f"{prefix}-") else ""
    return int(value) if value.isdigit() and len(value) < 19 else None


def payment_id_from_custom_id(custom_id: str) -> int | None:
    return _our_id(custom_id, "payment")


def refund_id_from_custom_id(custom_id: str) -> int | None:
    return _our_id(custom_id, "refund")


def invoice_id_from_custom_id(custom_id: str) -> int | None:
    """A checkout order's invoice (the order is opened before its payment row exists)."""
    return _our_id(custom_id, "invoice")


def payment_order_id(payment: Payment) -> str:
    """PayPal's order id of a payment ("" before the order exists)."""
    return (payment.provider_payment_id or "") if payment.provider == PROVIDER else ""


def payment_ids_remember(*, payment: Payment, order_id: str, capture_id: str = "") -> None:
    """Keep PayPal's order id (the payment) and capture id (the money moved) on a locked payment the first
    time each is seen; neither is ever re-pointed."""
    fields = []
    if order_id and not payment.provider_payment_id:
        payment.provider, payment.provider_payment_id = PROVIDER, order_id
        fields += ["provider", "provider_payment_id"]
    if capture_id and not payment.provider_charge_id:
        payment.provider, payment.provider_charge_id = PROVIDER, capture_id
        fields += ["provider", "provider_charge_id"]
    if fields:
        payment.save(update_fields=[*dict.fromkeys(fields), "updated_at"])


def _capture_sync(*, payment: Payment, capture: PayPalCapture, observed_at: datetime, actor: Actor, reason: str,
                  now: datetime | None) -> SyncResult:
    to_status = CAPTURE_STATUS.get(capture.status)
    if to_status is None:
        return SyncResult(payment, False, f"capture {capture.id} status {capture.status!r} is not an outcome")
    failure_code = (capture.status_reason or capture.status).lower() if to_status == P.FAILED else ""
    return payment_sync_status(
        payment=payment, to_status=to_status, observed_at=observed_at, actor=actor, reason=reason,
        provider_data={"provider": PROVIDER, "order": capture.order_id, "capture": capture.id,
                       "status": capture.status},
        failure_code=failure_code, failure_reason=f"PayPal capture {capture.status}" if failure_code else "",
        now=now)


def payment_sync_order(*, payment: Payment, order: PayPalOrder, observed_at: datetime, actor: Actor, reason: str,
                       now: datetime | None = None) -> SyncResult:
    """Apply an order's state (an API answer) to its locked payment."""
    payment_ids_remember(payment=payment, order_id=order.id, capture_id=order.capture.id if order.capture else "")
    if order.capture is not None:
        return _capture_sync(payment=payment, capture=order.capture, observed_at=observed_at, actor=actor,
                             reason=reason, now=now)
    if order.status == "VOIDED":
        return payment_sync_status(payment=payment, to_status=P.CANCELED, observed_at=observed_at, actor=actor,
                                   reason=reason, provider_data={"provider": PROVIDER, "order": order.id}, now=now)
    return SyncResult(payment, False, f"order {order.id} is {order.status}: not an outcome yet")


def payment_sync_charge(*, payment: Payment, order_id: str, capture_id: str, to_status: str, provider_status: str,
                        observed_at: datetime, actor: Actor, reason: str, failure_code: str = "",
                        failure_message: str = "", now: datetime | None = None) -> SyncResult:
    """Apply a charge's answer in the contract's words (ChargeResult) to its locked payment: PayPal's ids
    remembered, the status (ours already) moved through the state machine, order-proof."""
    payment_ids_remember(payment=payment, order_id=order_id, capture_id=capture_id)
    if not to_status:
        return SyncResult(payment, False, f"order {order_id} is {provider_status}: not an outcome yet")
    return payment_sync_status(
        payment=payment, to_status=to_status, observed_at=observed_at, actor=actor, reason=reason,
        provider_data={"provider": PROVIDER, "order": order_id, "capture": capture_id, "status": provider_status},
        failure_code=failure_code, failure_reason=failure_message, now=now)


def payment_sync_capture(*, payment: Payment, capture: PayPalCapture, actor: Actor, reason: str,
                         now: datetime | None = None) -> SyncResult:
    """Apply a capture PayPal reported (a webhook) at the capture's own time."""
    payment_ids_remember(payment=payment, order_id=capture.order_id, capture_id=capture.id)
    return _capture_sync(payment=payment, capture=capture, observed_at=capture.updated_at or observed_now(),
                         actor=actor, reason=reason, now=now)


def refund_apply_paypal(*, payment: Payment, refund: Refund, result: PayPalRefund, actor: Actor, reason: str,
                        now: datetime | None = None) -> bool:
    """Apply what PayPal says of one of our refunds to it and its locked payment: move the status forward
    and count a success once. False when the message is old news."""
    if result.custom_id and refund_id_from_custom_id(result.custom_id) not in (None, refund.pk):
        raise InvalidOperation(_("PayPal refund %(reference)s belongs to another refund than #%(refund)s")
                               % {"reference": result.id, "refund": refund.pk}, code="refund_mismatch")
    if result.id and refund.provider_refund_id != result.id:
        if refund.provider_refund_id:
            raise InvalidOperation(_("refund #%(refund)s is %(ours)s in PayPal, not %(theirs)s")
                                   % {"refund": refund.pk, "ours": refund.provider_refund_id, "theirs": result.id},
                                   code="refund_mismatch")
        refund.provider, refund.provider_refund_id = PROVIDER, result.id
        refund.save(update_fields=["provider", "provider_refund_id"])
    to_status = result.refund_status
    if not to_status or to_status not in ALLOWED_REFUND_TRANSITIONS[refund.status]:
        return False
    provider_data = {"provider": PROVIDER, "refund": result.id, "status": result.status, "capture": result.capture_id}
    refund_transition(refund=refund, to_status=to_status, actor=actor, reason=reason, provider_data=provider_data)
    if to_status == RefundStatus.SUCCEEDED:
        payment_refund_apply(payment=payment, amount=refund.amount, actor=actor, reason=reason,
                             provider_data=provider_data, now=now)
    return True


def payment_collected_before_refund(*, payment: Payment, result: PayPalRefund, actor: Actor,
                                    now: datetime | None = None) -> SyncResult | None:
    """A refund proves its capture completed: record that success first when its own message has not
    arrived yet (PayPal does not promise delivery order)."""
    if payment.status in COLLECTED_STATUSES:
        return None
    return payment_sync_status(payment=payment, to_status=P.SUCCEEDED, observed_at=result.updated_at or observed_now(),
                               actor=actor, reason="capture completed (reported with its refund)",
                               provider_data={"provider": PROVIDER, "capture": result.capture_id}, now=now)
