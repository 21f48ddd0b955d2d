"""Writes for payments: status moves (through `payment_transition` only) and locking. Manual payments are
the manual rail's (payments.providers.manual.services.payment_record_manual)."""

from datetime import datetime
from functools import partial

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import IllegalTransition
from core.jobs import job_defer
from payments.emails import PAYMENT_SUCCEEDED_TASK
from payments.live.broadcast import payment_broadcast
from payments.models import Payment, PaymentStatus, PaymentStatusChange
from payments.selectors.lists import COLLECTED_PAYMENT_STATUSES
from payments.services.invoices import invoice_apply_payment
from payments.services.money_rollups import money_rollups_add, money_rollups_track
from payments.webhooks import payment_webhook_emit

P = PaymentStatus

ALLOWED_PAYMENT_TRANSITIONS: dict[str, set[str]] = {
    P.PENDING: {P.PROCESSING, P.SUCCEEDED, P.FAILED, P.CANCELED},
    P.PROCESSING: {P.SUCCEEDED, P.FAILED, P.CANCELED},
    # A failed PaymentIntent can be retried with another card and still succeed.
    P.FAILED: {P.PROCESSING, P.SUCCEEDED, P.CANCELED},
    P.SUCCEEDED: {P.PARTIALLY_REFUNDED, P.REFUNDED},
    P.PARTIALLY_REFUNDED: {P.REFUNDED},
    P.REFUNDED: set(),
    P.CANCELED: set(),
}


def payment_transition(*, payment: Payment, to_status: str, actor: Actor, reason: str = "",
                       provider_data: dict | None = None, now: datetime | None = None,
                       provider_created: datetime | None = None, failure_code: str = "",
                       failure_reason: str = "") -> Payment:
    """Move a locked payment to `to_status`, audit it, and settle its invoice when it succeeds.

    `provider_created` is when the provider's event or answer was produced: an update older than the
    newest one already applied is refused (a late webhook never overwrites newer state). A failure
    leaves the invoice open: the billing run's dunning decides when to try again.
    """
    now = now or timezone.now()
    from_status = payment.status
    if to_status not in ALLOWED_PAYMENT_TRANSITIONS[from_status]:
        raise IllegalTransition(_("A %(from_status)s payment cannot become %(to_status)s.")
                                % {"from_status": from_status, "to_status": to_status},
                                extra={"from": from_status, "to": to_status})
    if provider_created is not None and payment.provider_updated_at is not None \
            and provider_created < payment.provider_updated_at:
        raise IllegalTransition(
            _("A provider update from %(update)s is older than the one already applied (%(applied)s).")
            % {"update": provider_created.isoformat(), "applied": payment.provider_updated_at.isoformat()},
            code="stale_provider_update",
            extra={"from": from_status, "to": to_status})
    payment.status = to_status
    fields = ["status", "updated_at"]
    if provider_created is not None:
        payment.provider_updated_at = provider_created
        fields.append("provider_updated_at")
    if to_status == P.SUCCEEDED:
        payment.succeeded_at = now
        payment.failure_code = payment.failure_reason = ""
        fields += ["succeeded_at", "failure_code", "failure_reason"]
    elif to_status == P.FAILED:
        payment.failure_code = failure_code[:100]
        payment.failure_reason = (failure_reason or reason)[:500]
        fields += ["failure_code", "failure_reason"]
    # The summary counts payments by status; revenue only succeeded ones (by when they succeeded).
    moves_revenue = to_status == P.SUCCEEDED or (from_status in COLLECTED_PAYMENT_STATUSES) != (
        to_status in COLLECTED_PAYMENT_STATUSES)
    with money_rollups_track(payments=Q(pk=payment.pk),
                             only=None if moves_revenue else ("payment_summary",)):
        payment.save(update_fields=fields)
    change = PaymentStatusChange(payment=payment, from_status=from_status, to_status=to_status,
                                 reason=reason[:500], provider_data=provider_data or {})
    change.stamp(actor)
    change.save()
    payment_webhook_emit(payment=payment, to_status=to_status)
    transaction.on_commit(partial(payment_broadcast, payment_id=payment.pk, previous_status=from_status))
    if to_status == P.SUCCEEDED:
        job_defer(name=PAYMENT_SUCCEEDED_TASK, payment_id=payment.pk)
    if to_status == P.SUCCEEDED and payment.invoice_id:
        invoice_apply_payment(invoice_id=payment.invoice_id, amount=payment.amount, actor=actor, now=now,
                              payment_id=payment.pk)
    return payment


def payment_create(**fields) -> Payment:
    """Insert a payment (any rail, any status) and count it in the money rollups: every new payment row
    goes through here."""
    payment = Payment.objects.create(**fields)
    payment_counted(payment_id=payment.pk)
    return payment


def payment_counted(*, payment_id: int) -> None:
    """Count a payment row just inserted (by `payment_create`, or a `get_or_create` that created it)."""
    money_rollups_add(payments=Q(pk=payment_id))


def payment_lock(*, payment_id: int) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment_id)
