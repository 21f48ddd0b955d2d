"""Issuing many invoices in one go: drafts become open invoices with gapless numbers taken by one
counter update. Numbers, totals, amount due, due date, first collection attempt and audit reasons come
from the same functions `invoice_create` + `invoice_finalize` use (payments.services.invoices)."""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from core.audit import Actor
from core.bulk import AUDIT_FIELDS, audit_values, ids_reserve, json_text, rows_copy
from core.jobs import job_defer
from payments.emails import INVOICES_FINALIZED_TASK
from payments.models import Invoice, InvoiceLine, InvoiceStatus, InvoiceStatusChange
from payments.services import (
    ISSUED_REASON,
    NOTHING_DUE_REASON,
    LineSpec,
    invoice_amount_due,
    invoice_issue_terms,
    invoice_line_amount,
    invoice_numbers_take,
    invoice_total,
)
from payments.services.mrr_rollups import mrr_rollups_refresh
from payments.webhooks import invoices_issued_webhook_emit


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
    written = timezone.now()
    invoices, lines, changes = [], [], []
    for pk, number, draft in zip(ids, numbers, drafts, strict=True):
        subtotal = _line_rows_add(invoice_id=pk, specs=draft.lines, rows=lines)
        total = invoice_total(subtotal=subtotal)
        amount_due = invoice_amount_due(total=total, amount_paid=0)
        terms = invoice_issue_terms(issued_at=now, amount_due=amount_due)
        status = InvoiceStatus.PAID if terms.settles_at_once else InvoiceStatus.OPEN
        invoices.append((pk, number, draft.customer_id, draft.subscription_id, draft.billing_reason,
                         draft.period_start, draft.period_end, status, draft.currency, subtotal, total, 0, amount_due,
                         terms.due_date, terms.issued_at, now if terms.settles_at_once else None, 0,
                         terms.next_attempt_at, json_text(draft.metadata), written, written))
        changes.append((*audit_values(actor=actor, reason=ISSUED_REASON, now=written), pk, InvoiceStatus.DRAFT,
                        InvoiceStatus.OPEN))
        if terms.settles_at_once:
            changes.append((*audit_values(actor=actor, reason=NOTHING_DUE_REASON, now=written), pk,
                            InvoiceStatus.OPEN, InvoiceStatus.PAID))
    rows_copy(model=Invoice, fields=_INVOICE_FIELDS, rows=invoices)
    rows_copy(model=InvoiceLine, fields=_LINE_FIELDS, rows=lines)
    mrr_rollups_refresh(customer_ids=[draft.customer_id for draft in drafts if draft.subscription_id])
    rows_copy(model=InvoiceStatusChange, fields=_CHANGE_FIELDS, rows=changes)
    job_defer(name=INVOICES_FINALIZED_TASK, invoice_ids=[row[0] for row in invoices])
    invoices_issued_webhook_emit(invoice_ids=[row[0] for row in invoices])
    return [IssuedInvoice(pk=row[0], number=row[1], subscription_id=row[3], total=row[10], status=row[7])
            for row in invoices]


def _line_rows_add(*, invoice_id: int, specs: list[LineSpec], rows: list[tuple]) -> int:
    """Append the COPY rows of one invoice's lines to `rows`; returns the invoice's subtotal."""
    subtotal = 0
    for spec in specs:
        amount = invoice_line_amount(quantity=spec.quantity, unit_amount=spec.unit_amount)
        subtotal += amount
        rows.append((invoice_id, spec.kind, spec.description[:300], spec.quantity, spec.unit_amount, amount,
                     spec.period_start, spec.period_end, spec.meter_id, spec.credits, json_text(spec.metadata)))
    return subtotal
