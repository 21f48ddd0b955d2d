"""Refunds of succeeded payments: manual methods at once, card payments through Stripe, and counting a
refund that has happened against its payment."""

from datetime import datetime
from functools import partial

from django.db import IntegrityError, transaction

from billing_project.audit import Actor
from billing_project.exceptions import IdempotencyConflict, IllegalTransition, InvalidOperation
from payments import stripe_gateway
from payments.live import payment_broadcast
from payments.models import Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus
from payments.services.payments import payment_lock, payment_transition

P = PaymentStatus


def _refund_replay(*, existing: Refund, payment: Payment, amount: int | None) -> Refund:
    """The refund a repeated key already made, unless the key now asks for something else."""
    if existing.payment_id != payment.pk or (amount is not None and amount != existing.amount):
        raise IdempotencyConflict("This idempotency key was already used for another refund.",
                                  extra={"refund_id": existing.pk})
    return existing


@transaction.atomic
def payment_refund(*, payment: Payment, actor: Actor, amount: int | None = None, reason: str = "",
                   idempotency_key: str | None = None, now: datetime | None = None) -> Refund:
    """Refund all or part of a succeeded payment. Manual methods are refunded at once (the money goes
    back by hand); card payments go through the payment provider."""
    payment = payment_lock(payment_id=payment.pk)
    if idempotency_key:
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            return _refund_replay(existing=existing, payment=payment, amount=amount)
    if payment.status not in (P.SUCCEEDED, P.PARTIALLY_REFUNDED):
        raise IllegalTransition(f"A {payment.status} payment cannot be refunded.", code="payment_not_refundable")
    amount = payment.refundable_amount if amount is None else amount
    if amount <= 0 or amount > payment.refundable_amount:
        raise InvalidOperation(f"Refund must be between 1 and {payment.refundable_amount}.", code="invalid_amount",
                               extra={"refundable": payment.refundable_amount})
    if payment.method == PaymentMethod.STRIPE:
        return _payment_refund_stripe(payment=payment, amount=amount, actor=actor, reason=reason,
                                      idempotency_key=idempotency_key, now=now)
    refund = Refund(payment=payment, amount=amount, currency=payment.currency, reason=reason[:500],
                    idempotency_key=idempotency_key, status=RefundStatus.SUCCEEDED)
    refund.stamp(actor)
    try:
        with transaction.atomic():
            refund.save()
    except IntegrityError:
        return _refund_replay(existing=Refund.objects.get(idempotency_key=idempotency_key), payment=payment,
                              amount=amount)
    payment_refund_apply(payment=payment, amount=amount, actor=actor, reason=reason, now=now)
    return refund


# Stripe's refund statuses in ours; requires_action (some bank refunds) is still on its way.
STRIPE_REFUND_STATUS = {
    "succeeded": RefundStatus.SUCCEEDED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}


def _payment_refund_stripe(*, payment: Payment, amount: int, actor: Actor, reason: str,
                           idempotency_key: str | None, now: datetime | None) -> Refund:
    """Refund a card payment in Stripe while its row is locked, so a charge.refunded webhook for this
    very refund waits for us and then finds it by stripe_refund_id instead of counting it again."""
    if not payment.stripe_payment_intent_id:
        raise InvalidOperation("This card payment never reached Stripe; there is nothing to refund there.",
                               code="payment_not_in_stripe")
    refund = Refund(payment=payment, amount=amount, currency=payment.currency, reason=reason[:500],
                    idempotency_key=idempotency_key, status=RefundStatus.PENDING)
    refund.stamp(actor)
    try:
        with transaction.atomic():
            refund.save()
    except IntegrityError:
        return Refund.objects.get(idempotency_key=idempotency_key)
    # The caller's key when there is one, so a retry after a crash between Stripe's answer and our
    # commit asks Stripe for the same refund instead of a second one.
    stripe_key = f"refund-{payment.pk}-{idempotency_key}" if idempotency_key else f"refund-{refund.pk}"
    result = stripe_gateway.refund_create(
        payment_intent_id=payment.stripe_payment_intent_id, amount=amount, idempotency_key=stripe_key,
        metadata={"refund_id": str(refund.pk), "payment_id": str(payment.pk)},
    )
    refund.stripe_refund_id = result.id
    refund.status = STRIPE_REFUND_STATUS.get(result.status, RefundStatus.PENDING)
    refund.save(update_fields=["stripe_refund_id", "status"])
    if refund.status == RefundStatus.SUCCEEDED:
        payment_refund_apply(payment=payment, amount=amount, actor=actor, reason=reason or "refunded in Stripe",
                             provider_data={"refund": result.id, "status": result.status}, now=now)
    return refund


def payment_refund_apply(*, payment: Payment, amount: int, actor: Actor, reason: str = "",
                         provider_data: dict | None = None, now: datetime | None = None) -> Payment:
    """Count a refund that has happened against its locked payment."""
    payment.amount_refunded += amount
    payment.save(update_fields=["amount_refunded", "updated_at"])
    to_status = P.REFUNDED if payment.amount_refunded >= payment.amount else P.PARTIALLY_REFUNDED
    if to_status != payment.status:
        payment_transition(payment=payment, to_status=to_status, actor=actor, reason=reason or "refunded",
                           provider_data=provider_data, now=now)
    else:  # a further partial refund: same status, new amount_refunded
        transaction.on_commit(partial(payment_broadcast, payment_id=payment.pk, previous_status=payment.status))
    return payment
