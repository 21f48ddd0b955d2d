"""Writes for payments: status moves (through `payment_transition` only), locking, manual payments."""

from datetime import datetime
from functools import partial

from django.db import transaction
from django.utils import timezone

from core.audit import Actor
from core.exceptions import IllegalTransition, InvalidOperation
from payments.live.broadcast import payment_broadcast
from payments.models import (
    MANUAL_PAYMENT_METHODS,
    MANUAL_PROVIDER,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentStatus,
    PaymentStatusChange,
)
from payments.services.invoices import invoice_apply_payment, invoice_lock
from subscriptions.models import Customer

IS = InvoiceStatus
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
        raise IllegalTransition(f"A {from_status} payment cannot become {to_status}.",
                                extra={"from": from_status, "to": to_status})
    if provider_created is not None and payment.provider_updated_at is not None \
            and provider_created < payment.provider_updated_at:
        raise IllegalTransition(
            f"A provider update from {provider_created.isoformat()} is older than the one already applied "
            f"({payment.provider_updated_at.isoformat()}).", code="stale_provider_update",
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
    payment.save(update_fields=fields)
    change = PaymentStatusChange(payment=payment, from_status=from_status, to_status=to_status,
                                 reason=reason[:500], provider_data=provider_data or {})
    change.stamp(actor)
    change.save()
    transaction.on_commit(partial(payment_broadcast, payment_id=payment.pk, previous_status=from_status))
    if to_status == P.SUCCEEDED and payment.invoice_id:
        invoice_apply_payment(invoice_id=payment.invoice_id, amount=payment.amount, actor=actor, now=now)
    return payment


def payment_lock(*, payment_id: int) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment_id)


@transaction.atomic
def payment_record_manual(*, customer: Customer, amount: int, method: str, actor: Actor,
                          invoice: Invoice | None = None, reference: str = "", reason: str = "",
                          now: datetime | None = None) -> Payment:
    """Money received outside Stripe (cash, check, bank transfer): recorded as succeeded."""
    if method not in MANUAL_PAYMENT_METHODS:
        raise InvalidOperation(f"{method} is not a manual payment method.", code="invalid_method")
    if amount <= 0:
        raise InvalidOperation("A payment must be for a positive amount.", code="invalid_amount")
    if invoice is not None:
        if invoice.customer_id != customer.pk:
            raise InvalidOperation("The invoice belongs to another customer.", code="invoice_customer_mismatch")
        # Re-read under lock: with a stale copy (two staff recording the same cheque) the second payment
        # would be kept against an invoice that no longer counts it.
        invoice = invoice_lock(invoice_id=invoice.pk)
        if invoice.status not in (IS.OPEN, IS.UNCOLLECTIBLE):
            raise IllegalTransition(f"A {invoice.status} invoice takes no payment.", code="invoice_not_payable")
    payment = Payment.objects.create(customer=customer, invoice=invoice, amount=amount, currency=customer.currency,
                                     method=method, provider=MANUAL_PROVIDER, reference=reference[:255])
    return payment_transition(payment=payment, to_status=P.SUCCEEDED, actor=actor,
                              reason=reason or f"{method} received", now=now,
                              provider_data={"reference": reference} if reference else None)
