"""Refunds of succeeded payments, their status moves, and counting a refund that has happened against its
payment.

Manual methods (cash, check, bank transfer) are refunded in one transaction: the money goes back by hand.
A payment taken through a rail that refunds (Capability.REFUNDS, e.g. a card through Stripe) holds no
lock while the rail answers (docs/stripe.md, "Provider calls and locks"); the rail is reached only
through the provider contract (payments.providers):
1. intent: a short transaction locks the payment, checks the amount against what is left once refunds
   still in flight are set aside (so concurrent refunds never exceed the captured amount), and commits a
   `requested` Refund;
2. call: the rail's `refund_create` is asked with no transaction open, under the key `refund-<refund id>`
   and with the refund's id in the provider refund's metadata;
3. outcome: a short transaction records the answer through the rail's `refund_apply`.
A webhook may settle the refund between 2 and 3 (it finds the row by metadata or by the request's
idempotency key); whichever comes second finds it settled and counts nothing again. A crash between 1
and 3 leaves a `requested` refund: the same call again (same idempotency key) asks the provider again
under the same key, which answers the refund it already made, and a webhook settles it too.

A refund's row is written only while its payment is locked, so the payment lock orders all its refunds.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import (
    BillingError,
    IdempotencyConflict,
    IllegalTransition,
    InvalidOperation,
    PaymentProviderError,
    PaymentProviderUnavailable,
)
from payments.live.broadcast import payment_broadcast
from payments.models import Payment, PaymentStatus, Refund, RefundStatus, RefundStatusChange
from payments.providers import Capability, PaymentProvider, RefundRequest, provider_installed_for
from payments.selectors.refunds import payment_refunds_in_flight
from payments.services.money_rollups import money_rollups_add, money_rollups_track
from payments.services.payments import payment_lock, payment_transition
from payments.webhooks import payment_refunded_webhook_emit

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

_REFUND_KEY = re.compile(r"refund-(\d+)")


def refund_idempotency_key(*, refund_id: int) -> str:
    """The provider's idempotency key for our refund: stable from the committed intent on, so asking again
    after a crash gets the refund the provider already made instead of a second one."""
    return f"refund-{refund_id}"


def refund_id_from_idempotency_key(key: str) -> int | None:
    """Our refund id back from a key made by `refund_idempotency_key` (a provider echoes it in events)."""
    match = _REFUND_KEY.fullmatch(key or "")
    return int(match.group(1)) if match else None


def refund_counted(*, refund_id: int) -> None:
    """Count a refund row just inserted in the money rollups (every writer of a new refund calls it; one
    created pending counts nothing until it succeeds)."""
    money_rollups_add(refunds=Q(pk=refund_id))


def refund_transition(*, refund: Refund, to_status: str, actor: Actor, reason: str = "",
                      provider_data: dict | None = None) -> Refund:
    """Move a refund (its payment locked) to `to_status` and audit it, or raise IllegalTransition."""
    from_status = refund.status
    if to_status not in ALLOWED_REFUND_TRANSITIONS[from_status]:
        raise IllegalTransition(_("A %(from_status)s refund cannot become %(to_status)s.")
                                % {"from_status": from_status, "to_status": to_status},
                                extra={"from": from_status, "to": to_status})
    refund.status = to_status
    # Revenue counts succeeded refunds only.
    with money_rollups_track(refunds=Q(pk=refund.pk),
                             only=("revenue",) if R.SUCCEEDED in (from_status, to_status) else ()):
        refund.save(update_fields=["status"])
    change = RefundStatusChange(refund=refund, from_status=from_status, to_status=to_status, reason=reason[:500],
                                provider_data=provider_data or {})
    change.stamp(actor)
    change.save()
    return refund


def _refund_replay(*, existing: Refund, payment: Payment, amount: int | None) -> Refund:
    """The refund a repeated key already made, unless the key now asks for something else."""
    if existing.payment_id != payment.pk or (amount is not None and amount != existing.amount):
        raise IdempotencyConflict(_("This idempotency key was already used for another refund."),
                                  extra={"refund_id": existing.pk})
    if existing.status == R.FAILED:
        raise PaymentProviderError(_("Refund #%(refund)s failed at the provider; try again with a new idempotency "
                                     "key.") % {"refund": existing.pk},
                                   code="refund_failed", extra={"refund_id": existing.pk})
    return existing


@dataclass(frozen=True)
class _Intent:
    refund: Refund
    # The rail to ask and its id of the payment; None when nothing is left to ask a provider.
    rail: PaymentProvider | None = None
    payment_reference: str = ""


def payment_refund(*, payment: Payment, actor: Actor, amount: int | None = None, reason: str = "",
                   idempotency_key: str | None = None, now: datetime | None = None) -> Refund:
    """Refund all or part of a succeeded payment. Manual methods are refunded at once (the money goes
    back by hand); payments through a rail that refunds, with no transaction open while it answers (so
    call this outside any transaction). A provider error leaves the refund failed, the payment unchanged,
    and is raised."""
    with transaction.atomic():
        intent = _payment_refund_intent(payment_id=payment.pk, actor=actor, amount=amount, reason=reason,
                                        idempotency_key=idempotency_key, now=now)
    if intent.rail is None:
        return intent.refund
    return _refund_ask_provider(refund=intent.refund, rail=intent.rail, payment_reference=intent.payment_reference,
                                actor=actor, now=now)


def _payment_refund_intent(*, payment_id: int, actor: Actor, amount: int | None, reason: str,
                           idempotency_key: str | None, now: datetime | None) -> _Intent:
    """Under the payment's lock: the refund a repeated key made, or a new one (manual: applied at once;
    through a rail: committed as requested, its amount held until the provider settles it)."""
    payment = payment_lock(payment_id=payment_id)
    existing = Refund.objects.filter(idempotency_key=idempotency_key).first() if idempotency_key else None
    if existing is not None:
        return _intent_of(refund=_refund_replay(existing=existing, payment=payment, amount=amount), payment=payment)
    if payment.status not in (P.SUCCEEDED, P.PARTIALLY_REFUNDED):
        raise IllegalTransition(_("A %(status)s payment cannot be refunded.") % {"status": payment.status},
                                code="payment_not_refundable")
    in_flight = payment_refunds_in_flight(payment_id=payment.pk)
    refundable = payment.refundable_amount - in_flight
    amount = refundable if amount is None else amount
    if amount <= 0 or amount > refundable:
        message = (_("Refund must be between 1 and %(refundable)s (%(in_flight)s more is being refunded).")
                   if in_flight else _("Refund must be between 1 and %(refundable)s."))
        raise InvalidOperation(message % {"refundable": refundable, "in_flight": in_flight}, code="invalid_amount",
                               extra={"refundable": refundable})
    rail = _refund_rail(payment=payment)
    card = rail is not None
    if card:
        _provider_refund_check(rail=rail, payment=payment)
    refund = Refund(payment=payment, amount=amount, currency=payment.currency, reason=reason[:500],
                    provider=payment.provider, idempotency_key=idempotency_key,
                    status=R.REQUESTED if card else R.SUCCEEDED)
    refund.stamp(actor)
    try:
        with transaction.atomic():
            refund.save()
            refund_counted(refund_id=refund.pk)
    except IntegrityError:  # the same key, just used for a refund of another payment
        existing = Refund.objects.get(idempotency_key=idempotency_key)
        return _intent_of(refund=_refund_replay(existing=existing, payment=payment, amount=amount), payment=payment)
    if not card:
        payment_refund_apply(payment=payment, amount=amount, actor=actor, reason=reason, now=now)
    return _intent_of(refund=refund, payment=payment)


def _refund_rail(*, payment: Payment) -> PaymentProvider | None:
    """The rail that sends this payment's money back, or None when it goes back by hand: the manual rail,
    and rails that are not installed (as before rails were installable)."""
    rail = provider_installed_for(payment.provider)
    return rail if rail is not None and Capability.REFUNDS in rail.capabilities else None


def _provider_refund_check(*, rail: PaymentProvider, payment: Payment) -> None:
    """Refuse before anything is committed when the rail cannot be asked at all."""
    if not rail.is_configured():
        raise PaymentProviderUnavailable(rail.unavailable_message, extra={"provider": rail.code})
    if not rail.payment_reference(payment=payment):
        raise InvalidOperation(_("This payment never reached %(rail)s; there is nothing to refund there.")
                               % {"rail": rail.code},
                               code="payment_not_at_provider", extra={"provider": rail.code})


def _intent_of(*, refund: Refund, payment: Payment) -> _Intent:
    """A requested refund (new, or left by a crash and asked for again) still needs its rail."""
    rail = _refund_rail(payment=payment)
    if refund.status == R.REQUESTED and rail is not None:
        _provider_refund_check(rail=rail, payment=payment)
        return _Intent(refund=refund, rail=rail, payment_reference=rail.payment_reference(payment=payment))
    return _Intent(refund=refund)


def _refund_ask_provider(*, refund: Refund, rail: PaymentProvider, payment_reference: str, actor: Actor,
                         now: datetime | None) -> Refund:
    """Ask the rail for a committed refund (no transaction open), then record its answer."""
    try:
        result = rail.refund_create(RefundRequest(
            payment_reference=payment_reference, amount=refund.amount, currency=refund.currency,
            idempotency_key=refund_idempotency_key(refund_id=refund.pk),
            metadata={"refund_id": str(refund.pk), "payment_id": str(refund.payment_id)},
        ))
    except BillingError as exc:
        refund = _refund_record_failure(refund=refund, rail=rail, exc=exc, actor=actor)
        if refund.status == R.FAILED:
            raise
        return refund  # a webhook settled it meanwhile: the provider did take the request
    with transaction.atomic():
        payment = payment_lock(payment_id=refund.payment_id)
        refund = Refund.objects.get(pk=refund.pk)
        rail.refund_apply(payment=payment, refund=refund, result=result, actor=actor,
                          reason=refund.reason or f"refunded in {rail.code}", now=now)
    return refund


def _refund_record_failure(*, refund: Refund, rail: PaymentProvider, exc: BillingError, actor: Actor) -> Refund:
    """The provider refused (or never answered): the refund fails and its payment is left as it was. If
    it did refund after all, its webhook moves the refund on (failed -> succeeded is allowed)."""
    with transaction.atomic():
        payment_lock(payment_id=refund.payment_id)
        refund = Refund.objects.get(pk=refund.pk)
        if refund.status == R.REQUESTED:
            refund_transition(refund=refund, to_status=R.FAILED, actor=actor,
                              reason=f"{rail.code} refund failed: {exc.message}",
                              provider_data={"error": exc.code, **exc.extra})
    logger.warning("%s refund #%s of payment #%s failed: %s", rail.code, refund.pk, refund.payment_id, exc)
    return refund


def payment_refund_apply(*, payment: Payment, amount: int, actor: Actor, reason: str = "",
                         provider_data: dict | None = None, now: datetime | None = None) -> Payment:
    """Count a refund that has happened against its locked payment."""
    payment.amount_refunded += amount
    with money_rollups_track(payments=Q(pk=payment.pk), only=("payment_summary",)):
        payment.save(update_fields=["amount_refunded", "updated_at"])
    to_status = P.REFUNDED if payment.amount_refunded >= payment.amount else P.PARTIALLY_REFUNDED
    if to_status != payment.status:
        payment_transition(payment=payment, to_status=to_status, actor=actor, reason=reason or "refunded",
                           provider_data=provider_data, now=now)
    else:  # a further partial refund: same status, new amount_refunded
        transaction.on_commit(partial(payment_broadcast, payment_id=payment.pk, previous_status=payment.status))
    payment_refunded_webhook_emit(payment=payment, amount=amount)
    return payment
