"""Issuing many invoices in one go: drafts become open invoices with gapless numbers taken by one
counter update, with the same totals, audit rows and due dates as `invoice_create` + `invoice_finalize`."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from billing_project.audit import Actor
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


def invoices_issue(*, drafts: list[InvoiceDraft], actor: Actor, now: datetime) -> list[Invoice]:
    """Write and finalize the drafts (inside the caller's transaction) with a constant number of queries.

    A second invoice for a subscription period violates `invoice_one_per_subscription_period`, which
    aborts the caller's transaction: that constraint, not a prior check, is the exactly-once guard."""
    if not drafts:
        return []
    numbers = iter(invoice_numbers_take(year=now.year, count=len(drafts)))
    due_date = now + timedelta(days=settings.INVOICE_DAYS_UNTIL_DUE)
    invoices, line_rows = [], []
    for draft in drafts:
        rows = [InvoiceLine(kind=spec.kind, description=spec.description[:300], quantity=spec.quantity,
                            unit_amount=spec.unit_amount,
                            amount=invoice_line_amount(quantity=spec.quantity, unit_amount=spec.unit_amount),
                            period_start=spec.period_start, period_end=spec.period_end, meter_id=spec.meter_id,
                            metadata=spec.metadata)
                for spec in draft.lines]
        subtotal = sum(row.amount for row in rows)
        # A credit larger than the charges does not make the customer owed cash on this invoice.
        total = max(subtotal, 0)
        invoices.append(Invoice(
            number=next(numbers), customer_id=draft.customer_id, subscription_id=draft.subscription_id,
            billing_reason=draft.billing_reason, period_start=draft.period_start, period_end=draft.period_end,
            currency=draft.currency, subtotal=subtotal, total=total, amount_paid=0, amount_due=total,
            status=InvoiceStatus.OPEN if total else InvoiceStatus.PAID, issued_at=now, due_date=due_date,
            paid_at=None if total else now, next_attempt_at=now if total else None, metadata=draft.metadata,
        ))
        line_rows.append(rows)
    Invoice.objects.bulk_create(invoices)
    for invoice, rows in zip(invoices, line_rows, strict=True):
        for row in rows:
            row.invoice = invoice
    InvoiceLine.objects.bulk_create([row for rows in line_rows for row in rows])
    changes = []
    for invoice in invoices:
        changes.append(InvoiceStatusChange(invoice=invoice, from_status=InvoiceStatus.DRAFT,
                                           to_status=InvoiceStatus.OPEN, reason="finalized"))
        if invoice.status == InvoiceStatus.PAID:
            changes.append(InvoiceStatusChange(invoice=invoice, from_status=InvoiceStatus.OPEN,
                                               to_status=InvoiceStatus.PAID, reason="nothing due"))
    for change in changes:
        change.stamp(actor)
    InvoiceStatusChange.objects.bulk_create(changes)
    return invoices
