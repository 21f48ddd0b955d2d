"""Apply what Stripe says about a payment (an API answer or a webhook) to our rows, order-proof.

Both the synchronous answer of an off-session charge and every later webhook end up here, so the two
paths cannot disagree. Three guards keep a late or repeated message from overwriting newer state:
- `Payment.provider_updated_at`: an update produced before the newest one applied is stale;
- the payment state machine: succeeded never goes back to processing or failed;
- refunds are reconciled against the charge's cumulative `amount_refunded` and matched by
  the refund's `provider_refund_id` or our refund id, and a refund's status only moves forward, so a refund is never
  counted twice whichever message reports it first.
Callers lock the payment row first (`payment_lock`).
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import InvalidOperation
from payments.models import Payment, PaymentStatus, PaymentStatusChange, Refund, RefundStatus
from payments.providers.stripe.gateway import ChargeResult, DisputeResult, PaymentIntentResult, RefundResult
from payments.providers.stripe.models import STRIPE
from payments.selectors.refunds import IN_FLIGHT_REFUND_STATUSES
from payments.services import (
    ALLOWED_REFUND_TRANSITIONS,
    payment_refund_apply,
    refund_counted,
    refund_id_from_idempotency_key,
    refund_transition,
)
from payments.services.payment_sync import COLLECTED_STATUSES, SyncResult, payment_sync_status

logger = logging.getLogger(__name__)

P = PaymentStatus

# A PaymentIntent's status in our terms. requires_payment_method after a confirmation means the card was
# refused; requires_action off-session means the bank wants the customer, who is not there: both are a
# failed attempt for dunning. requires_confirmation is not an outcome yet.
INTENT_STATUS = {
    "succeeded": P.SUCCEEDED,
    "processing": P.PROCESSING,
    "requires_capture": P.PROCESSING,
    "requires_payment_method": P.FAILED,
    "requires_action": P.FAILED,
    "canceled": P.CANCELED,
}

# Stripe's refund statuses in ours; requires_action (some bank refunds) is still on its way.
STRIPE_REFUND_STATUS = {
    "succeeded": RefundStatus.SUCCEEDED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}


def payment_sync_intent(*, payment: Payment, intent: PaymentIntentResult, observed_at: datetime, actor: Actor,
                        reason: str, now: datetime | None = None, to_status: str = "") -> SyncResult:
    """Apply a PaymentIntent's state to its locked payment (and remember the ids Stripe gave it).
    `to_status` is ours when the caller already has it (the contract's ChargeResult.status); else it is
    read from the intent's status."""
    fields = []
    if not payment.provider_payment_id:
        payment.provider, payment.provider_payment_id = STRIPE, intent.id
        fields += ["provider", "provider_payment_id"]
    if intent.latest_charge_id and not payment.provider_charge_id:
        payment.provider_charge_id = intent.latest_charge_id
        fields.append("provider_charge_id")
    if fields:
        payment.save(update_fields=[*fields, "updated_at"])
    to_status = to_status or INTENT_STATUS.get(intent.status)
    if to_status is None:
        return SyncResult(payment, False, f"PaymentIntent status {intent.status!r} is not an outcome")
    failure_code, failure_reason = intent.failure_code, intent.failure_message
    if intent.status == "requires_action" and not failure_code:
        failure_code = "authentication_required"
        failure_reason = "The bank asks the customer to authenticate this payment."
    return payment_sync_status(
        payment=payment, to_status=to_status, observed_at=observed_at, actor=actor, reason=reason,
        provider_data={"payment_intent": intent.id, "status": intent.status, "charge": intent.latest_charge_id,
                       "failure_code": intent.failure_code},
        failure_code=failure_code, failure_reason=failure_reason, now=now,
    )


def refund_apply_stripe(*, payment: Payment, refund: Refund, result: RefundResult, actor: Actor, reason: str,
                        now: datetime | None = None, to_status: str = "") -> bool:
    """Apply what Stripe says of one of our refunds (its API answer or a webhook) to it and its locked
    payment: remember the Stripe refund id, move the status forward, and count a success against the
    payment. False when the message is old news (the refund is already there or further on)."""
    if result.id and refund.provider_refund_id != result.id:
        if refund.provider_refund_id:
            raise InvalidOperation(_("refund #%(refund)s is %(ours)s in Stripe, not %(theirs)s")
                                   % {"refund": refund.pk, "ours": refund.provider_refund_id, "theirs": result.id},
                                   code="refund_mismatch")
        refund.provider, refund.provider_refund_id = STRIPE, result.id
        refund.save(update_fields=["provider", "provider_refund_id"])
    # Ours when the caller already has it (the contract's RefundResult.status), else read from Stripe's.
    to_status = to_status or STRIPE_REFUND_STATUS.get(result.status)
    if to_status is None or to_status not in ALLOWED_REFUND_TRANSITIONS[refund.status]:
        return False
    provider_data = {"refund": result.id, "status": result.status}
    refund_transition(refund=refund, to_status=to_status, actor=actor, reason=reason, provider_data=provider_data)
    if to_status == RefundStatus.SUCCEEDED:
        payment_refund_apply(payment=payment, amount=refund.amount, actor=actor, reason=reason,
                             provider_data=provider_data, now=now)
    return True


def payment_sync_charge_refunds(*, payment: Payment, charge: ChargeResult, observed_at: datetime, actor: Actor,
                                request_key: str = "", now: datetime | None = None) -> SyncResult:
    """Reconcile a locked payment's refunds with a charge Stripe reports as (partly) refunded.

    Stripe's `amount_refunded` is cumulative, so only the part we have not counted yet is applied. Our own
    refunds are found by their Stripe refund id (provider_refund_id), by the refund id in their Stripe
    metadata (when the charge lists its refunds), by the idempotency key of the request that caused the
    event (`request_key`, `refund-<id>`), or else are the oldest still in flight; none is counted twice.
    Refunds made in the Stripe dashboard get a Refund row, and a late or repeated charge.refunded changes
    nothing.
    """
    notes = []
    if payment.status not in COLLECTED_STATUSES and charge.paid and charge.status == "succeeded":
        # A refunded charge had been paid: the success message may still be on its way.
        notes.append(payment_sync_status(payment=payment, to_status=P.SUCCEEDED, observed_at=observed_at,
                                         actor=actor, reason="charge paid (reported with its refund)",
                                         provider_data={"charge": charge.id}, now=now).note)
    if payment.status not in COLLECTED_STATUSES:
        return SyncResult(payment, False, f"payment #{payment.pk} is {payment.status}; nothing to refund")
    if not payment.provider_charge_id:
        payment.provider_charge_id = charge.id
        payment.save(update_fields=["provider_charge_id", "updated_at"])
    refunds = _ChargeRefunds(payment=payment, charge=charge, actor=actor, now=now)
    refunds.reconcile(request_key=request_key)
    if not refunds.applied:
        notes.append(_("refunds of charge %(charge)s already counted (%(refunded)s)")
                     % {"charge": charge.id, "refunded": payment.amount_refunded})
    return SyncResult(payment, refunds.applied, "; ".join(n for n in notes if n))


@dataclass
class _ChargeRefunds:
    """One reconciliation of a locked, collected payment's refunds with a refunded charge."""

    payment: Payment
    charge: ChargeResult
    actor: Actor
    now: datetime | None
    applied: bool = False

    def missing(self) -> int:
        """What Stripe says was refunded that we have not counted yet."""
        return min(self.charge.amount_refunded, self.payment.amount) - self.payment.amount_refunded

    def reconcile(self, *, request_key: str) -> None:
        """Match the charge's listed refunds, then the request's own refund, then those in flight; record
        whatever Stripe counts beyond them as refunded in Stripe."""
        charge, payment = self.charge, self.payment
        for listed in charge.refunds:
            if listed.status != "succeeded":
                continue
            ours = _our_refund(payment=payment, stripe_refund_id=listed.id,
                               refund_id=_our_id(listed.metadata, "refund_id"))
            if ours is not None:
                self.settle(ours, listed.id)
            elif self.missing() > 0:
                self.record(min(listed.amount, self.missing()), listed.id, "refunded in Stripe")
        requested = _our_refund(payment=payment, refund_id=refund_id_from_idempotency_key(request_key))
        if requested is not None:
            self.settle(requested)
        for in_flight in payment.refunds.filter(status__in=IN_FLIGHT_REFUND_STATUSES).order_by("id"):
            self.settle(in_flight)
        if self.missing() > 0:
            # Newer API versions leave the refund list out of the charge; the amount is what we know.
            self.record(self.missing(), None, f"refunded in Stripe (charge {charge.id}; refund id not in the event)")

    def settle(self, refund: Refund, stripe_refund_id: str = "") -> None:
        """Our refund succeeded, if it fits in what is still uncounted."""
        if refund.status == RefundStatus.SUCCEEDED or not 0 < refund.amount <= self.missing():
            return
        charge = self.charge
        result = RefundResult(id=stripe_refund_id, status="succeeded", amount=refund.amount,
                              currency=charge.currency, payment_intent_id=charge.payment_intent_id, charge_id=charge.id)
        self.applied |= refund_apply_stripe(payment=self.payment, refund=refund, result=result, actor=self.actor,
                                            reason=refund.reason or "refunded", now=self.now)

    def record(self, amount: int, stripe_refund_id: str | None, reason: str) -> None:
        """A refund made outside our system (the Stripe dashboard): a new succeeded Refund row."""
        payment = self.payment
        refund = Refund(payment=payment, amount=amount, currency=payment.currency, provider=STRIPE,
                        provider_refund_id=stripe_refund_id, status=RefundStatus.SUCCEEDED, reason=reason)
        refund.stamp(self.actor)
        refund.save()
        refund_counted(refund_id=refund.pk)
        payment_refund_apply(payment=payment, amount=amount, actor=self.actor, reason=reason,
                             provider_data={"charge": self.charge.id, "refund": stripe_refund_id or ""}, now=self.now)
        self.applied = True


def _our_id(metadata: dict, key: str) -> int | None:
    value = str(metadata.get(key) or "")
    return int(value) if value.isdigit() else None


def _our_refund(*, payment: Payment, stripe_refund_id: str = "", refund_id: int | None = None) -> Refund | None:
    """A refund of this payment, by its Stripe id or by our id (from metadata or an idempotency key)."""
    refunds = payment.refunds.all()
    found = refunds.filter(provider=STRIPE, provider_refund_id=stripe_refund_id).first() if stripe_refund_id else None
    if found is None and refund_id is not None:
        found = refunds.filter(pk=refund_id).first()
    return found


def payment_record_dispute(*, payment: Payment, dispute: DisputeResult, actor: Actor) -> SyncResult:
    """Note a dispute on its locked payment and alert staff.

    No money moves here: Stripe holds the disputed amount until the dispute is decided, and finance
    answers it in the Stripe dashboard. We keep it on the payment (metadata["disputes"]), write an audit
    row, and log an error-level line that operators route to staff.
    """
    disputes = dict(payment.metadata.get("disputes") or {})
    record = {"status": dispute.status, "reason": dispute.reason, "amount": dispute.amount,
              "currency": dispute.currency, "charge": dispute.charge_id,
              "created": dispute.created.isoformat() if dispute.created else ""}
    if disputes.get(dispute.id) == record:
        return SyncResult(payment, False, f"dispute {dispute.id} already recorded")
    disputes[dispute.id] = record
    payment.metadata = {**payment.metadata, "disputes": disputes}
    payment.save(update_fields=["metadata", "updated_at"])
    change = PaymentStatusChange(payment=payment, from_status=payment.status, to_status=payment.status,
                                 reason=f"dispute {dispute.id} opened: {dispute.reason}"[:500],
                                 provider_data={"dispute": dispute.id, **record})
    change.stamp(actor)
    change.save()
    # On commit: a rolled-back (then replayed) handler must not page staff twice.
    transaction.on_commit(lambda: logger.error(
        "Stripe dispute %s opened on payment #%s (%s %s, reason %s): answer it in the Stripe dashboard",
        dispute.id, payment.pk, dispute.amount, dispute.currency, dispute.reason))
    return SyncResult(payment, True)
