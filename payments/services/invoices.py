"""Writes for invoices: lines and totals, gapless numbering, finalizing, settling, voiding. Status moves go
through `invoice_transition` only."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import IllegalTransition
from core.jobs import job_defer
from core.money import round_minor
from payments.emails import INVOICE_FINALIZED_TASK
from payments.live.topics import invoice_changed
from payments.models import (
    BillingReason,
    Invoice,
    InvoiceLine,
    InvoiceNumberSequence,
    InvoiceStatus,
    InvoiceStatusChange,
)
from payments.services.money_rollups import money_rollups_track
from payments.services.mrr_rollups import BILLED_INVOICE_STATUSES, mrr_rollups_refresh
from payments.services.paid_invoice_effects import (
    credit_pack_fulfill,
    credit_pack_orders_fulfill,
    payment_credit_entries_record,
    subscription_activate_after_payment,
)
from payments.webhooks import invoice_webhook_emit
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
        raise IllegalTransition(_("A %(from_status)s invoice cannot become %(to_status)s.")
                                % {"from_status": from_status, "to_status": to_status},
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
    with money_rollups_track(invoices=Q(pk=invoice.pk), only=_revenue_moves(from_status, to_status)):
        invoice.save(update_fields=fields)
    change = InvoiceStatusChange(invoice=invoice, from_status=from_status, to_status=to_status, reason=reason[:500])
    change.stamp(actor)
    change.save()
    if invoice.subscription_id and (from_status in BILLED_INVOICE_STATUSES) != (to_status in BILLED_INVOICE_STATUSES):
        mrr_rollups_refresh(customer_ids=[invoice.customer_id])
    invoice_webhook_emit(invoice=invoice, from_status=from_status, to_status=to_status)
    invoice_changed(invoice_id=invoice.pk, kind="updated")
    return invoice


def _revenue_moves(from_status: str, to_status: str) -> tuple[str, ...]:
    """("revenue",) when the move changes what the invoice adds to revenue: in or out of billed (invoiced),
    in or out of uncollectible (written off); open -> paid changes neither."""
    billed = (from_status in BILLED_INVOICE_STATUSES) != (to_status in BILLED_INVOICE_STATUSES)
    return ("revenue",) if billed or IS.UNCOLLECTIBLE in (from_status, to_status) else ()


def _amount_due_save(*, invoice: Invoice, fields: list[str]) -> None:
    """Save a changed amount due: on an uncollectible invoice it is the amount written off."""
    with money_rollups_track(invoices=Q(pk=invoice.pk),
                             only=("revenue",) if invoice.status == IS.UNCOLLECTIBLE else ()):
        invoice.save(update_fields=fields)


def invoice_lock(*, invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice_id)


# The audit reasons of the two moves issuing makes: draft -> open, and open -> paid when nothing is due.
ISSUED_REASON = "finalized"
NOTHING_DUE_REASON = "nothing due"


def invoice_number_format(*, year: int, sequence: int) -> str:
    return f"INV-{year}-{sequence:06d}"


def invoice_numbers_take(*, year: int, count: int) -> list[str]:
    """`count` consecutive gapless numbers of `year` with one statement. The counter row stays locked
    until the caller's transaction ends, and a rollback gives the numbers back."""
    if count <= 0:
        return []
    table = InvoiceNumberSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (year, last_number) VALUES (%s, %s) ON CONFLICT (year) DO UPDATE "
            f"SET last_number = {table}.last_number + EXCLUDED.last_number RETURNING last_number",
            [year, count],
        )
        last = cursor.fetchone()[0]
    return [invoice_number_format(year=year, sequence=n) for n in range(last - count + 1, last + 1)]


def invoice_number_next(*, year: int) -> str:
    """Take the next gapless number of the year; must run inside the finalizing transaction."""
    return invoice_numbers_take(year=year, count=1)[0]


def invoice_total(*, subtotal: int) -> int:
    # A credit larger than the charges does not make the customer owed cash on this invoice.
    return max(subtotal, 0)


def invoice_amount_due(*, total: int, amount_paid: int) -> int:
    # Overpayment stays recorded on the payments; the invoice never shows a negative amount due.
    return max(total - amount_paid, 0)


@dataclass(frozen=True)
class IssueTerms:
    """The dates an invoice is issued with, and whether it settles at once."""

    issued_at: datetime
    due_date: datetime
    # Collection starts at issue; an invoice with nothing due is never collected.
    next_attempt_at: datetime | None
    settles_at_once: bool


def invoice_issue_terms(*, issued_at: datetime, amount_due: int) -> IssueTerms:
    """The one definition of issuing that `invoice_finalize` and the bulk `invoices_issue` share."""
    return IssueTerms(issued_at=issued_at,
                      due_date=issued_at + timedelta(days=settings.INVOICE_DAYS_UNTIL_DUE),
                      next_attempt_at=issued_at if amount_due else None, settles_at_once=amount_due == 0)


def invoice_totals_recompute(*, invoice: Invoice) -> Invoice:
    subtotal = invoice.lines.aggregate(total=Sum("amount"))["total"] or 0
    invoice.subtotal = subtotal
    invoice.total = invoice_total(subtotal=subtotal)
    invoice.amount_due = invoice_amount_due(total=invoice.total, amount_paid=invoice.amount_paid)
    invoice.save(update_fields=["subtotal", "total", "amount_due", "updated_at"])
    return invoice


@transaction.atomic
def invoice_create(*, customer: Customer, lines: list[LineSpec], subscription: Subscription | None = None,
                   billing_reason: str = BillingReason.MANUAL, period_start: datetime | None = None,
                   period_end: datetime | None = None, metadata: dict | None = None, note: str = "") -> Invoice:
    """A draft invoice with its lines and totals."""
    invoice = Invoice.objects.create(
        customer=customer, subscription=subscription, billing_reason=billing_reason, currency=customer.currency,
        period_start=period_start, period_end=period_end, metadata=metadata or {}, note=note,
    )
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=invoice, kind=spec.kind, description=spec.description[:300], quantity=spec.quantity,
                    unit_amount=spec.unit_amount,
                    amount=invoice_line_amount(quantity=spec.quantity, unit_amount=spec.unit_amount),
                    period_start=spec.period_start, period_end=spec.period_end, meter_id=spec.meter_id,
                    credits=spec.credits, metadata=spec.metadata)
        for spec in lines
    ])
    invoice_changed(invoice_id=invoice.pk, kind="created")
    return invoice_totals_recompute(invoice=invoice)


@transaction.atomic
def invoice_finalize(*, invoice: Invoice, actor: Actor, now: datetime | None = None) -> Invoice:
    """Draft -> open with the next gapless number; an invoice with nothing due is paid at once."""
    now = now or timezone.now()
    invoice = invoice_lock(invoice_id=invoice.pk)
    if invoice.status != IS.DRAFT:
        # Refused before a number is taken: only a draft is issued.
        raise IllegalTransition(_("A %(status)s invoice cannot be finalized; only drafts are.")
                                % {"status": invoice.status},
                                extra={"from": invoice.status, "to": IS.OPEN})
    invoice = invoice_totals_recompute(invoice=invoice)
    terms = invoice_issue_terms(issued_at=now, amount_due=invoice.amount_due)
    invoice.number = invoice_number_next(year=now.year)
    invoice.issued_at = terms.issued_at
    invoice.due_date = terms.due_date
    invoice.next_attempt_at = terms.next_attempt_at
    invoice.save(update_fields=["number", "issued_at", "due_date", "next_attempt_at", "updated_at"])
    invoice_transition(invoice=invoice, to_status=IS.OPEN, actor=actor, reason=ISSUED_REASON, now=now)
    job_defer(name=INVOICE_FINALIZED_TASK, invoice_id=invoice.pk)
    if terms.settles_at_once:
        invoice_settle(invoice=invoice, actor=actor, reason=NOTHING_DUE_REASON, now=now)
    return invoice


def invoice_settle(*, invoice: Invoice, actor: Actor, reason: str, now: datetime | None = None,
                   payment_id: int | None = None) -> Invoice:
    """Mark a locked invoice paid and let its subscription benefit from it. `payment_id` is the payment
    that covered it, recorded as the cause of the credits this grants (none when staff mark it paid)."""
    invoice = invoice_transition(invoice=invoice, to_status=IS.PAID, actor=actor, reason=reason, now=now)
    grants = []
    # Another open invoice of the subscription (an unpaid renewal while a proration is paid) still
    # stands between it and active; written-off (uncollectible) invoices do not.
    still_owed = Invoice.objects.filter(subscription_id=invoice.subscription_id, status=IS.OPEN).exclude(pk=invoice.pk)
    if invoice.subscription_id and not still_owed.exists():
        grants.append(subscription_activate_after_payment(subscription_id=invoice.subscription_id, actor=actor,
                                                          now=now))
    if invoice.billing_reason == BillingReason.CREDIT_PACK:
        grants.append(credit_pack_fulfill(invoice=invoice, actor=actor))
    grants += credit_pack_orders_fulfill(invoice=invoice, actor=actor)
    if payment_id is not None:
        payment_credit_entries_record(payment_id=payment_id, writes=grants)
    return invoice

@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, actor: Actor, reason: str = "", now: datetime | None = None) -> Invoice:
    """Staff say the invoice was paid outside the system (or written off as paid)."""
    invoice = invoice_lock(invoice_id=invoice.pk)
    invoice.amount_due = 0
    _amount_due_save(invoice=invoice, fields=["amount_due", "updated_at"])
    return invoice_settle(invoice=invoice, actor=actor, reason=reason or "marked paid by staff", now=now)


@transaction.atomic
def invoice_void(*, invoice: Invoice, actor: Actor, reason: str = "", now: datetime | None = None) -> Invoice:
    invoice = invoice_lock(invoice_id=invoice.pk)
    if invoice.amount_paid:
        raise IllegalTransition(_("An invoice with payments cannot be voided; refund the payments first."),
                                code="invoice_has_payments")
    return invoice_transition(invoice=invoice, to_status=IS.VOID, actor=actor, reason=reason or "voided", now=now)


def invoice_apply_payment(*, invoice_id: int, amount: int, actor: Actor, now: datetime | None = None,
                          payment_id: int | None = None) -> Invoice:
    """Count a succeeded payment on its invoice; the payment that covers it settles it."""
    invoice = invoice_lock(invoice_id=invoice_id)
    if invoice.status not in (IS.OPEN, IS.UNCOLLECTIBLE):
        # Money arrived for an invoice that is already settled: it stays recorded on the payment.
        return invoice
    invoice.amount_paid += amount
    invoice.amount_due = invoice_amount_due(total=invoice.total, amount_paid=invoice.amount_paid)
    _amount_due_save(invoice=invoice, fields=["amount_paid", "amount_due", "updated_at"])
    invoice_changed(invoice_id=invoice.pk, kind="updated")
    if invoice.amount_due == 0:
        invoice_settle(invoice=invoice, actor=actor, reason="paid in full", now=now, payment_id=payment_id)
    return invoice
