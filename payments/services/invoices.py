"""Writes for invoices: lines and totals, gapless numbering, finalizing, settling, voiding. Status moves go
through `invoice_transition` only."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from core.audit import Actor
from core.exceptions import IllegalTransition
from core.money import round_minor
from payments.models import (
    BillingReason,
    Invoice,
    InvoiceLine,
    InvoiceNumberSequence,
    InvoiceStatus,
    InvoiceStatusChange,
)
from payments.services.paid_invoice_effects import (
    credit_pack_fulfill,
    credit_pack_orders_fulfill,
    subscription_activate_after_payment,
)
from subscriptions.models import Customer, Subscription

IS = InvoiceStatus

ALLOWED_INVOICE_TRANSITIONS: dict[str, set[str]] = {
    IS.DRAFT: {IS.OPEN, IS.VOID},
    IS.OPEN: {IS.PAID, IS.VOID, IS.UNCOLLECTIBLE},
    IS.UNCOLLECTIBLE: {IS.PAID, IS.VOID},
    IS.PAID: set(),
    IS.VOID: set(),
}


@dataclass(frozen=True)
class LineSpec:
    kind: str
    description: str
    unit_amount: Decimal
    quantity: Decimal = Decimal(1)
    period_start: datetime | None = None
    period_end: datetime | None = None
    meter_id: int | None = None
    # Credits a credit pack line sells (InvoiceLine.credits), granted when the invoice is paid.
    credits: int | None = None
    metadata: dict = field(default_factory=dict)


def invoice_line_amount(*, quantity: Decimal, unit_amount: Decimal) -> int:
    """The one place a line's amount is rounded: half-up to the minor unit."""
    return round_minor(Decimal(quantity) * Decimal(unit_amount))


def invoice_transition(*, invoice: Invoice, to_status: str, actor: Actor, reason: str = "",
                       now: datetime | None = None) -> Invoice:
    now = now or timezone.now()
    from_status = invoice.status
    if to_status not in ALLOWED_INVOICE_TRANSITIONS[from_status]:
        raise IllegalTransition(f"A {from_status} invoice cannot become {to_status}.",
                                extra={"from": from_status, "to": to_status})
    invoice.status = to_status
    fields = ["status", "updated_at"]
    if to_status == IS.PAID:
        invoice.paid_at = now
        invoice.next_attempt_at = None
        fields += ["paid_at", "next_attempt_at"]
    elif to_status in (IS.VOID, IS.UNCOLLECTIBLE):
        if to_status == IS.VOID:
            invoice.voided_at = now
            fields.append("voided_at")
        invoice.next_attempt_at = None
        fields.append("next_attempt_at")
    invoice.save(update_fields=fields)
    change = InvoiceStatusChange(invoice=invoice, from_status=from_status, to_status=to_status, reason=reason[:500])
    change.stamp(actor)
    change.save()
    return invoice


def invoice_lock(*, invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice_id)


def invoice_number_next(*, year: int) -> str:
    """Take the next gapless number of the year; must run inside the finalizing transaction."""
    InvoiceNumberSequence.objects.bulk_create([InvoiceNumberSequence(year=year)], ignore_conflicts=True)
    sequence = InvoiceNumberSequence.objects.select_for_update().get(year=year)
    sequence.last_number = F("last_number") + 1
    sequence.save(update_fields=["last_number"])
    sequence.refresh_from_db(fields=["last_number"])
    return f"INV-{year}-{sequence.last_number:06d}"


def invoice_totals_recompute(*, invoice: Invoice) -> Invoice:
    subtotal = invoice.lines.aggregate(total=Sum("amount"))["total"] or 0
    invoice.subtotal = subtotal
    # A credit larger than the charges does not make the customer owed cash on this invoice.
    invoice.total = max(subtotal, 0)
    invoice.amount_due = max(invoice.total - invoice.amount_paid, 0)
    invoice.save(update_fields=["subtotal", "total", "amount_due", "updated_at"])
    return invoice


@transaction.atomic
def invoice_create(*, customer: Customer, lines: list[LineSpec], subscription: Subscription | None = None,
                   billing_reason: str = BillingReason.MANUAL, period_start: datetime | None = None,
                   period_end: datetime | None = None, metadata: dict | None = None) -> Invoice:
    """A draft invoice with its lines and totals."""
    invoice = Invoice.objects.create(
        customer=customer, subscription=subscription, billing_reason=billing_reason, currency=customer.currency,
        period_start=period_start, period_end=period_end, metadata=metadata or {},
    )
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=invoice, kind=spec.kind, description=spec.description[:300], quantity=spec.quantity,
                    unit_amount=spec.unit_amount,
                    amount=invoice_line_amount(quantity=spec.quantity, unit_amount=spec.unit_amount),
                    period_start=spec.period_start, period_end=spec.period_end, meter_id=spec.meter_id,
                    credits=spec.credits, metadata=spec.metadata)
        for spec in lines
    ])
    return invoice_totals_recompute(invoice=invoice)


@transaction.atomic
def invoice_finalize(*, invoice: Invoice, actor: Actor, now: datetime | None = None) -> Invoice:
    """Draft -> open with the next gapless number; an invoice with nothing due is paid at once."""
    now = now or timezone.now()
    invoice = invoice_lock(invoice_id=invoice.pk)
    invoice = invoice_totals_recompute(invoice=invoice)
    invoice.number = invoice_number_next(year=now.year)
    invoice.issued_at = now
    invoice.due_date = now + timedelta(days=settings.INVOICE_DAYS_UNTIL_DUE)
    invoice.next_attempt_at = now if invoice.amount_due else None
    invoice.save(update_fields=["number", "issued_at", "due_date", "next_attempt_at", "updated_at"])
    invoice_transition(invoice=invoice, to_status=IS.OPEN, actor=actor, reason="finalized", now=now)
    if invoice.amount_due == 0:
        invoice_settle(invoice=invoice, actor=actor, reason="nothing due", now=now)
    return invoice


def invoice_settle(*, invoice: Invoice, actor: Actor, reason: str, now: datetime | None = None) -> Invoice:
    """Mark a locked invoice paid and let its subscription benefit from it."""
    invoice = invoice_transition(invoice=invoice, to_status=IS.PAID, actor=actor, reason=reason, now=now)
    # Another open invoice of the subscription (an unpaid renewal while a proration is paid) still
    # stands between it and active; written-off (uncollectible) invoices do not.
    still_owed = Invoice.objects.filter(subscription_id=invoice.subscription_id, status=IS.OPEN).exclude(pk=invoice.pk)
    if invoice.subscription_id and not still_owed.exists():
        subscription_activate_after_payment(subscription_id=invoice.subscription_id, actor=actor, now=now)
    if invoice.billing_reason == BillingReason.CREDIT_PACK:
        credit_pack_fulfill(invoice=invoice, actor=actor)
    credit_pack_orders_fulfill(invoice=invoice, actor=actor)
    return invoice

@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, actor: Actor, reason: str = "", now: datetime | None = None) -> Invoice:
    """Staff say the invoice was paid outside the system (or written off as paid)."""
    invoice = invoice_lock(invoice_id=invoice.pk)
    invoice.amount_due = 0
    invoice.save(update_fields=["amount_due", "updated_at"])
    return invoice_settle(invoice=invoice, actor=actor, reason=reason or "marked paid by staff", now=now)


@transaction.atomic
def invoice_void(*, invoice: Invoice, actor: Actor, reason: str = "", now: datetime | None = None) -> Invoice:
    invoice = invoice_lock(invoice_id=invoice.pk)
    if invoice.amount_paid:
        raise IllegalTransition("An invoice with payments cannot be voided; refund the payments first.",
                                code="invoice_has_payments")
    return invoice_transition(invoice=invoice, to_status=IS.VOID, actor=actor, reason=reason or "voided", now=now)


def invoice_apply_payment(*, invoice_id: int, amount: int, actor: Actor, now: datetime | None = None) -> Invoice:
    invoice = invoice_lock(invoice_id=invoice_id)
    if invoice.status not in (IS.OPEN, IS.UNCOLLECTIBLE):
        # Money arrived for an invoice that is already settled: it stays recorded on the payment.
        return invoice
    invoice.amount_paid += amount
    invoice.amount_due = max(invoice.total - invoice.amount_paid, 0)
    invoice.save(update_fields=["amount_paid", "amount_due", "updated_at"])
    if invoice.amount_due == 0:
        invoice_settle(invoice=invoice, actor=actor, reason="paid in full", now=now)
    return invoice
