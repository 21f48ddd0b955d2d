"""Issuing many invoices in one go: drafts become open invoices with gapless numbers taken by one
counter update, with the same totals, audit rows and due dates as `invoice_create` + `invoice_finalize`."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.audit import Actor
from core.bulk import AUDIT_FIELDS, audit_values, ids_reserve, json_text, rows_copy
from payments.models import Invoice, InvoiceLine, InvoiceNumberSequence, InvoiceStatus, InvoiceStatusChange
from payments.services import LineSpec, invoice_line_amount


@dataclass
class InvoiceDraft:
    customer_id: int
    currency: str
    subscription_id: int | None
    billing_reason: str
    period_start: datetime | None
    period_end: datetime | None
    lines: list[LineSpec]
    metadata: dict = field(default_factory=dict)


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
    return [f"INV-{year}-{n:06d}" for n in range(last - count + 1, last + 1)]


@dataclass(frozen=True)
class IssuedInvoice:
    pk: int
    number: str
    subscription_id: int | None
    total: int
    status: str


_INVOICE_FIELDS = ("id", "number", "customer", "subscription", "billing_reason", "period_start", "period_end",
                   "status", "currency", "subtotal", "total", "amount_paid", "amount_due", "due_date", "issued_at",
                   "paid_at", "attempt_count", "next_attempt_at", "metadata", "created_at", "updated_at")
_LINE_FIELDS = ("invoice", "kind", "description", "quantity", "unit_amount", "amount", "period_start", "period_end",
                "meter", "credits", "metadata")
_CHANGE_FIELDS = (*AUDIT_FIELDS, "invoice", "from_status", "to_status")


def invoices_issue(*, drafts: list[InvoiceDraft], actor: Actor, now: datetime,
                   ids: list[int] | None = None) -> list[IssuedInvoice]:
    """Write and finalize the drafts (inside the caller's transaction) with a constant number of queries.

    `ids` may be reserved beforehand (`ids_reserve`) so other rows can name the invoices before they
    exist. Call this last in the transaction: the year's number counter stays locked from here to the
    commit, and concurrent runs wait for it.

    A second invoice for a subscription period violates `invoice_one_per_subscription_period`, which
    aborts the caller's transaction: that constraint, not a prior check, is the exactly-once guard."""
    if not drafts:
        return []
    ids = ids or ids_reserve(model=Invoice, count=len(drafts))
    numbers = invoice_numbers_take(year=now.year, count=len(drafts))
    due_date = now + timedelta(days=settings.INVOICE_DAYS_UNTIL_DUE)
    written = timezone.now()
    invoices, lines, changes = [], [], []
    for pk, number, draft in zip(ids, numbers, drafts, strict=True):
        subtotal = 0
        for spec in draft.lines:
            amount = invoice_line_amount(quantity=spec.quantity, unit_amount=spec.unit_amount)
            subtotal += amount
            lines.append((pk, spec.kind, spec.description[:300], spec.quantity, spec.unit_amount, amount,
                          spec.period_start, spec.period_end, spec.meter_id, spec.credits,
                          json_text(spec.metadata)))
        # A credit larger than the charges does not make the customer owed cash on this invoice.
        total = max(subtotal, 0)
        status = InvoiceStatus.OPEN if total else InvoiceStatus.PAID
        invoices.append((pk, number, draft.customer_id, draft.subscription_id, draft.billing_reason,
                         draft.period_start, draft.period_end, status, draft.currency, subtotal, total, 0, total,
                         due_date, now, None if total else now, 0, now if total else None,
                         json_text(draft.metadata), written, written))
        changes.append((*audit_values(actor=actor, reason="finalized", now=written), pk, InvoiceStatus.DRAFT,
                        InvoiceStatus.OPEN))
        if not total:
            changes.append((*audit_values(actor=actor, reason="nothing due", now=written), pk, InvoiceStatus.OPEN,
                            InvoiceStatus.PAID))
    rows_copy(model=Invoice, fields=_INVOICE_FIELDS, rows=invoices)
    rows_copy(model=InvoiceLine, fields=_LINE_FIELDS, rows=lines)
    rows_copy(model=InvoiceStatusChange, fields=_CHANGE_FIELDS, rows=changes)
    return [IssuedInvoice(pk=row[0], number=row[1], subscription_id=row[3], total=row[10], status=row[7])
            for row in invoices]
