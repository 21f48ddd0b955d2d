"""Refunds of succeeded payments, their status moves, and counting a refund that has happened against its
payment.

Manual methods (cash, check, bank transfer) are refunded in one transaction: the money goes back by hand.
A card refund holds no lock while Stripe answers (docs/stripe.md, "Provider calls and locks"):
1. intent: a short transaction locks the payment, checks the amount against what is left once refunds
   still in flight are set aside (so concurrent refunds never exceed the captured amount), and commits a
   `requested` Refund;
2. call: Stripe is asked with no transaction open, under the key `refund-<refund id>` and with the
   refund's id in the Stripe refund's metadata;
3. outcome: a short transaction records Stripe's answer through `refund_apply_stripe`.
A webhook may settle the refund between 2 and 3 (it finds the row by metadata or by the request's
idempotency key); whichever comes second finds it settled and counts nothing again. A crash between 1
and 3 leaves a `requested` refund: the same call again (same idempotency key) asks Stripe again under the
same key, which answers the refund it already made, and a webhook settles it too.

A refund's row is written only while its payment is locked, so the payment lock orders all its refunds.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.db import IntegrityError, transaction

from core.audit import Actor
from core.exceptions import (
    BillingError,
    IdempotencyConflict,
    IllegalTransition,
    InvalidOperation,
    PaymentProviderError,
    PaymentProviderUnavailable,
)
from payments import stripe_gateway
from payments.live import payment_broadcast
from payments.models import Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus, RefundStatusChange
from payments.selectors.refunds import payment_refunds_in_flight
from payments.services.payments import payment_lock, payment_transition
from payments.stripe_gateway import RefundResult

logger = logging.getLogger(__name__)

P = PaymentStatus
R = RefundStatus

ALLOWED_REFUND_TRANSITIONS: dict[str, set[str]] = {
    R.REQUESTED: {R.PENDING, R.SUCCEEDED, R.FAILED, R.CANCELED},
    R.PENDING: {R.SUCCEEDED, R.FAILED, R.CANCELED},
    # Failed is also what a provider error of unknown outcome (a timeout) leaves; Stripe's later word that
    # the money did go back wins. A failed refund never becomes pending again: a stale "pending" message
    # would hold its amount forever.
    R.FAILED: {R.SUCCEEDED},
    R.SUCCEEDED: set(),
    R.CANCELED: set(),
}

# Stripe's refund statuses in ours; requires_action (some bank refunds) is still on its way.
STRIPE_REFUND_STATUS = {
    "succeeded": R.SUCCEEDED,
    "pending": R.PENDING,
    "requires_action": R.PENDING,
    "failed": R.FAILED,
    "canceled": R.CANCELED,
}

_STRIPE_KEY = re.compile(r"refund-(\d+)")


def refund_stripe_key(*, refund_id: int) -> str:
    """Stripe's idempotency key for our refund: stable from the committed intent on, so asking again after
    a crash gets the refund Stripe already made instead of a second one."""
    return f"refund-{refund_id}"


def refund_id_from_stripe_key(key: str) -> int | None:
    match = _STRIPE_KEY.fullmatch(key or "")
    return int(match.group(1)) if match else None


def refund_transition(*, refund: Refund, to_status: str, actor: Actor, reason: str = "",
                      provider_data: dict | None = None) -> Refund:
    """Move a refund (its payment locked) to `to_status` and audit it, or raise IllegalTransition."""
    from_status = refund.status
    if to_status not in ALLOWED_REFUND_TRANSITIONS[from_status]:
        raise IllegalTransition(f"A {from_status} refund cannot become {to_status}.",
                                extra={"from": from_status, "to": to_status})
    refund.status = to_status
    refund.save(update_fields=["status"])
    change = RefundStatusChange(refund=refund, from_status=from_status, to_status=to_status, reason=reason[:500],
                                provider_data=provider_data or {})
    change.stamp(actor)
    change.save()
    return refund


def _refund_replay(*, existing: Refund, payment: Payment, amount: int | None) -> Refund:
    """The refund a repeated key already made, unless the key now asks for something else."""
    if existing.payment_id != payment.pk or (amount is not None and amount != existing.amount):
        raise IdempotencyConflict("This idempotency key was already used for another refund.",
                                  extra={"refund_id": existing.pk})
    if existing.status == R.FAILED:
        raise PaymentProviderError(f"Refund #{existing.pk} failed in Stripe; try again with a new idempotency key.",
                                   code="refund_failed", extra={"refund_id": existing.pk})
    return existing


@dataclass(frozen=True)
class _Intent:
    refund: Refund
    # The PaymentIntent to refund in Stripe; empty when nothing is left to ask Stripe.
    payment_intent_id: str = ""


def payment_refund(*, payment: Payment, actor: Actor, amount: int | None = None, reason: str = "",
                   idempotency_key: str | None = None, now: datetime | None = None) -> Refund:
    """Refund all or part of a succeeded payment. Manual methods are refunded at once (the money goes
    back by hand); card payments through Stripe, with no transaction open while Stripe answers (so call
    this outside any transaction). A Stripe error leaves the refund failed, the payment unchanged, and is
    raised."""
    with transaction.atomic():
        intent = _payment_refund_intent(payment_id=payment.pk, actor=actor, amount=amount, reason=reason,
                                        idempotency_key=idempotency_key, now=now)
    if not intent.payment_intent_id:
        return intent.refund
    return _refund_ask_stripe(refund=intent.refund, payment_intent_id=intent.payment_intent_id, actor=actor, now=now)


def _payment_refund_intent(*, payment_id: int, actor: Actor, amount: int | None, reason: str,
                           idempotency_key: str | None, now: datetime | None) -> _Intent:
    """Under the payment's lock: the refund a repeated key made, or a new one (manual: applied at once;
    card: committed as requested, its amount held until Stripe settles it)."""
    payment = payment_lock(payment_id=payment_id)
    existing = Refund.objects.filter(idempotency_key=idempotency_key).first() if idempotency_key else None
    if existing is not None:
        return _intent_of(refund=_refund_replay(existing=existing, payment=payment, amount=amount), payment=payment)
    if payment.status not in (P.SUCCEEDED, P.PARTIALLY_REFUNDED):
        raise IllegalTransition(f"A {payment.status} payment cannot be refunded.", code="payment_not_refundable")
    in_flight = payment_refunds_in_flight(payment_id=payment.pk)
    refundable = payment.refundable_amount - in_flight
    amount = refundable if amount is None else amount
    if amount <= 0 or amount > refundable:
        pending = f" ({in_flight} more is being refunded)" if in_flight else ""
        raise InvalidOperation(f"Refund must be between 1 and {refundable}{pending}.", code="invalid_amount",
                               extra={"refundable": refundable})
    card = payment.method == PaymentMethod.STRIPE
    if card:
        _card_refund_check(payment=payment)
    refund = Refund(payment=payment, amount=amount, currency=payment.currency, reason=reason[:500],
                    idempotency_key=idempotency_key, status=R.REQUESTED if card else R.SUCCEEDED)
    refund.stamp(actor)
    try:
        with transaction.atomic():
            refund.save()
    except IntegrityError:  # the same key, just used for a refund of another payment
        existing = Refund.objects.get(idempotency_key=idempotency_key)
        return _intent_of(refund=_refund_replay(existing=existing, payment=payment, amount=amount), payment=payment)
    if not card:
        payment_refund_apply(payment=payment, amount=amount, actor=actor, reason=reason, now=now)
    return _intent_of(refund=refund, payment=payment)


def _card_refund_check(*, payment: Payment) -> None:
    """Refuse before anything is committed when Stripe cannot be asked at all."""
    if not stripe_gateway.is_configured():
        raise PaymentProviderUnavailable(stripe_gateway.NOT_CONFIGURED)
    if not payment.stripe_payment_intent_id:
        raise InvalidOperation("This card payment never reached Stripe; there is nothing to refund there.",
                               code="payment_not_in_stripe")


def _intent_of(*, refund: Refund, payment: Payment) -> _Intent:
    """A requested card refund (new, or left by a crash and asked for again) still needs Stripe."""
    if refund.status == R.REQUESTED and payment.method == PaymentMethod.STRIPE:
        _card_refund_check(payment=payment)
        return _Intent(refund=refund, payment_intent_id=payment.stripe_payment_intent_id)
    return _Intent(refund=refund)


def _refund_ask_stripe(*, refund: Refund, payment_intent_id: str, actor: Actor, now: datetime | None) -> Refund:
    """Ask Stripe for a committed refund (no transaction open), then record its answer."""
    try:
        result = stripe_gateway.refund_create(
            payment_intent_id=payment_intent_id, amount=refund.amount,
            idempotency_key=refund_stripe_key(refund_id=refund.pk),
            metadata={"refund_id": str(refund.pk), "payment_id": str(refund.payment_id)},
        )
    except BillingError as exc:
        refund = _refund_record_failure(refund=refund, exc=exc, actor=actor)
        if refund.status == R.FAILED:
            raise
        return refund  # a webhook settled it meanwhile: Stripe did take the request
    with transaction.atomic():
        payment = payment_lock(payment_id=refund.payment_id)
        refund = Refund.objects.get(pk=refund.pk)
        refund_apply_stripe(payment=payment, refund=refund, result=result, actor=actor,
                            reason=refund.reason or "refunded in Stripe", now=now)
    return refund


def _refund_record_failure(*, refund: Refund, exc: BillingError, actor: Actor) -> Refund:
    """Stripe refused (or never answered): the refund fails and its payment is left as it was. If Stripe
    did refund after all, its webhook moves the refund on (failed -> succeeded is allowed)."""
    with transaction.atomic():
        payment_lock(payment_id=refund.payment_id)
        refund = Refund.objects.get(pk=refund.pk)
        if refund.status == R.REQUESTED:
            refund_transition(refund=refund, to_status=R.FAILED, actor=actor,
                              reason=f"Stripe refund failed: {exc.message}",
                              provider_data={"error": exc.code, **exc.extra})
    logger.warning("Stripe refund #%s of payment #%s failed: %s", refund.pk, refund.payment_id, exc)
    return refund


def refund_apply_stripe(*, payment: Payment, refund: Refund, result: RefundResult, actor: Actor, reason: str,
                        now: datetime | None = None) -> bool:
    """Apply what Stripe says of one of our refunds (its API answer or a webhook) to it and its locked
    payment: remember the Stripe refund id, move the status forward, and count a success against the
    payment. False when the message is old news (the refund is already there or further on)."""
    if result.id and refund.stripe_refund_id != result.id:
        if refund.stripe_refund_id:
            raise InvalidOperation(f"refund #{refund.pk} is {refund.stripe_refund_id} in Stripe, not {result.id}",
                                   code="refund_mismatch")
        refund.stripe_refund_id = result.id
        refund.save(update_fields=["stripe_refund_id"])
    to_status = STRIPE_REFUND_STATUS.get(result.status)
    if to_status is None or to_status not in ALLOWED_REFUND_TRANSITIONS[refund.status]:
        return False
    provider_data = {"refund": result.id, "status": result.status}
    refund_transition(refund=refund, to_status=to_status, actor=actor, reason=reason, provider_data=provider_data)
    if to_status == R.SUCCEEDED:
        payment_refund_apply(payment=payment, amount=refund.amount, actor=actor, reason=reason,
                             provider_data=provider_data, now=now)
    return True


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
