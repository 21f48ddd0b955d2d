"""Apply a provider's word on a payment's status to the locked payment, order-proof, whichever rail said it.

`Payment.provider_updated_at` orders the messages: an update produced before the newest one applied is
stale; the payment state machine refuses the rest (succeeded never goes back to processing or failed).
"""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from core.audit import Actor
from payments.models import Payment, PaymentStatus
from payments.services.payments import ALLOWED_PAYMENT_TRANSITIONS, payment_transition

P = PaymentStatus

# Our statuses that already include "the money was collected": a `succeeded` message changes nothing.
COLLECTED_STATUSES = {P.SUCCEEDED, P.PARTIALLY_REFUNDED, P.REFUNDED}


@dataclass(frozen=True)
class SyncResult:
    payment: Payment
    # False when the message was stale, repeated or refused by the state machine.
    applied: bool
    note: str = ""


def payment_sync_status(*, payment: Payment, to_status: str, observed_at: datetime, actor: Actor, reason: str,
                        provider_data: dict | None = None, failure_code: str = "", failure_reason: str = "",
                        now: datetime | None = None) -> SyncResult:
    """Move a locked payment to what the provider reported at `observed_at`, unless that is old news."""
    if payment.provider_updated_at and observed_at < payment.provider_updated_at:
        return SyncResult(payment, False, f"stale: {to_status} from {observed_at.isoformat()} is older than the "
                                          f"state applied at {payment.provider_updated_at.isoformat()} "
                                          f"(payment #{payment.pk} is {payment.status})")
    if to_status == payment.status or (to_status == P.SUCCEEDED and payment.status in COLLECTED_STATUSES):
        if payment.provider_updated_at is None or observed_at > payment.provider_updated_at:
            payment.provider_updated_at = observed_at
            payment.save(update_fields=["provider_updated_at", "updated_at"])
        return SyncResult(payment, False, f"payment #{payment.pk} is already {payment.status}")
    if to_status not in ALLOWED_PAYMENT_TRANSITIONS[payment.status]:
        return SyncResult(payment, False, f"refused: payment #{payment.pk} is {payment.status} and cannot go "
                                          f"back to {to_status}")
    payment_transition(payment=payment, to_status=to_status, actor=actor, reason=reason,
                       provider_data=provider_data, now=now, provider_created=observed_at,
                       failure_code=failure_code, failure_reason=failure_reason)
    return SyncResult(payment, True)


def observed_now() -> datetime:
    """When a synchronous API answer was seen: it reflects the provider's state at that moment, so webhooks
    created before it are older news."""
    return timezone.now()
