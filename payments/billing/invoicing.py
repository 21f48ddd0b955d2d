"""Issuing many invoices in one go: drafts become open invoices with gapless numbers taken by one
counter update. Numbers, totals, amount due, due date, first collection attempt and audit reasons come
from the same functions `invoice_create` + `invoice_finalize` use (payments.services.invoices).

Numbers are taken last (docs/decisions.md, "Invoice numbers at the end of the batch"): the invoices are
written as unnumbered drafts with everything else of the batch, the batch's deferred constraint checks
run, and only then does one statement take the year's numbers and one more number the drafts and open
them; the COMMIT follows at once. The year's counter row is therefore locked for two statements and a
COMMIT with nothing left to check, not for the whole batch, and a rollback still gives the numbers back."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from core.audit import Actor
from core.bulk import AUDIT_FIELDS, array_of, audit_values, ids_reserve, json_text, rows_copy, rows_update
from core.increments import increments_deferred
from core.jobs import job_defer
from payments.billing.common import deferred_checks_run
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
from payments.services.money_rollups import money_rollups_add
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
    # The dunning schedule the invoice is issued with when its first collection attempt was settled by
    # the batch that issues it (a customer with no way to pay: payments.billing.dunning); None issues it
    # with its first attempt due at issue, for the collection step.
    first_attempt: "FirstAttempt | None" = None


@dataclass(frozen=True)
class FirstAttempt:
    """A first collection attempt already failed at issue: the invoice starts with this attempt count and
    next attempt (no UPDATE of the invoice afterwards)."""

    attempt_count: int
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class IssuedInvoice:
    pk: int
    # None while the batch that writes it has not yet reached its numbering (`invoices_issuing`).
    number: str | None
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
    """Write, number and finalize the drafts (inside the caller's transaction) with a constant number of
    queries; see `invoices_issuing` for a batch with other writes."""
    with invoices_issuing(drafts=drafts, actor=actor, now=now, ids=ids) as issued:
        pass
    return issued


@contextmanager
def invoices_issuing(*, drafts: list[InvoiceDraft], actor: Actor, now: datetime,
                     ids: list[int] | None = None) -> Iterator[list[IssuedInvoice]]:
    """Issue the drafts around the rest of a batch: on entry the invoices, their lines and audit rows are
    written (unnumbered drafts, status as issued in the audit rows); the body makes the batch's other
    writes; on a clean exit the batch's deferred constraint checks run, then the numbers are taken and
    written, and the yielded list holds the numbered invoices. The caller's COMMIT should follow the
    block at once: the year's counter row stays locked from the numbering to the end of the transaction.

    `ids` may be reserved beforehand (`ids_reserve`) so other rows can name the invoices before they
    exist. A second invoice for a subscription period violates `invoice_one_per_subscription_period`,
    which aborts the caller's transaction on entry: that constraint, not a prior check, is the
    exactly-once guard."""
    # The batch's rollup increments (its MRR months, credit days, subscription counts, revenue) are held and
    # written after its deferred constraint checks, just before the numbering: rows every concurrent batch
    # also adds to then stay locked only for the batch's tail (core.increments).
    with increments_deferred():
        issued = _invoices_write(drafts=drafts, actor=actor, now=now, ids=ids)
        yield issued
        if issued:
            # Revenue counts them as issued (open, or paid, at the numbering below), under their subscriptions'
            # plans as the body left them (a scheduled downgrade applied).
            money_rollups_add(invoices=Q(pk__in=array_of(invoice.pk for invoice in issued)), only=("revenue",),
                              issuing=True)
            deferred_checks_run()
    issued[:] = _invoices_number(issued=issued, year=now.year)
    # Reads the numbered invoices back, and only when some endpoint wants invoice events.
    invoices_issued_webhook_emit(invoice_ids=[invoice.pk for invoice in issued])


def _invoices_write(*, drafts: list[InvoiceDraft], actor: Actor, now: datetime,
                    ids: list[int] | None) -> list[IssuedInvoice]:
    """COPY the drafts (unnumbered, status draft), their lines and their issuing audit rows."""
    if not drafts:
        return []
    ids = ids or ids_reserve(model=Invoice, count=len(drafts))
    written = timezone.now()
    invoices, lines, changes, issued = [], [], [], []
    for pk, draft in zip(ids, drafts, strict=True):
        subtotal = _line_rows_add(invoice_id=pk, specs=draft.lines, rows=lines)
        total = invoice_total(subtotal=subtotal)
        amount_due = invoice_amount_due(total=total, amount_paid=0)
        terms = invoice_issue_terms(issued_at=now, amount_due=amount_due)
        status = InvoiceStatus.PAID if terms.settles_at_once else InvoiceStatus.OPEN
        attempt = draft.first_attempt if draft.first_attempt and not terms.settles_at_once else None
        invoices.append((pk, None, draft.customer_id, draft.subscription_id, draft.billing_reason,
                         draft.period_start, draft.period_end, InvoiceStatus.DRAFT, draft.currency, subtotal, total, 0,
                         amount_due, terms.due_date, terms.issued_at, now if terms.settles_at_once else None,
                         attempt.attempt_count if attempt else 0,
                         attempt.next_attempt_at if attempt else terms.next_attempt_at,
                         _json(draft.metadata), written, written))
        changes.append((*audit_values(actor=actor, reason=ISSUED_REASON, now=written), pk, InvoiceStatus.DRAFT,
                        InvoiceStatus.OPEN))
        if terms.settles_at_once:
            changes.append((*audit_values(actor=actor, reason=NOTHING_DUE_REASON, now=written), pk,
                            InvoiceStatus.OPEN, InvoiceStatus.PAID))
        issued.append(IssuedInvoice(pk=pk, number=None, subscription_id=draft.subscription_id, total=total,
                                    status=status))
    rows_copy(model=Invoice, fields=_INVOICE_FIELDS, rows=invoices)
    rows_copy(model=InvoiceLine, fields=_LINE_FIELDS, rows=lines)
    # Still drafts: numbered and opened in the batch's last statement, in this transaction.
    mrr_rollups_refresh(customer_ids=[draft.customer_id for draft in drafts if draft.subscription_id],
                        issuing_invoice_ids=ids)
    rows_copy(model=InvoiceStatusChange, fields=_CHANGE_FIELDS, rows=changes)
    # Runs after the commit, which numbers them first.
    job_defer(name=INVOICES_FINALIZED_TASK, invoice_ids=[invoice.pk for invoice in issued])
    return issued


def _invoices_number(*, issued: list[IssuedInvoice], year: int) -> list[IssuedInvoice]:
    """Number the written drafts in id order and give them the status they were issued with (open, or
    paid when nothing is due; their audit rows were written with them). The batch's deferred foreign-key
    checks have run (`invoices_issuing`), so the COMMIT that follows has nothing left to check while the
    counter is locked. They run once more here for the few rollup rows written since."""
    if not issued:
        return []
    deferred_checks_run()
    issued = sorted(issued, key=lambda invoice: invoice.pk)
    numbers = invoice_numbers_take(year=year, count=len(issued))
    rows_update(model=Invoice, ids=[invoice.pk for invoice in issued],
                columns={"number": ("text", numbers), "status": ("text", [invoice.status for invoice in issued])})
    return [replace(invoice, number=number) for invoice, number in zip(issued, numbers, strict=True)]


def _line_rows_add(*, invoice_id: int, specs: list[LineSpec], rows: list[tuple]) -> int:
    """Append the COPY rows of one invoice's lines to `rows`; returns the invoice's subtotal."""
    subtotal = 0
    for spec in specs:
        amount = invoice_line_amount(quantity=spec.quantity, unit_amount=spec.unit_amount)
        subtotal += amount
        rows.append((invoice_id, spec.kind, spec.description[:300], spec.quantity, spec.unit_amount, amount,
                     spec.period_start, spec.period_end, spec.meter_id, spec.credits, _json(spec.metadata)))
    return subtotal


def _json(value: dict) -> str:
    # Most invoices and lines of a batch carry no metadata: skip the encoder for them (a batch has thousands).
    return json_text(value) if value else "{}"
