"""The invoice side of the MRR rollups (subscriptions.mrr_models): which plan fee is in force for a
subscription at each month start, and when each customer first paid one. Called in the transaction of
every change to the set of issued plan fee lines (invoices issued, one or a batch; an invoice voided or
issued from draft); `subscriptions.mrr_rollups.customer_mrr_refresh` then updates the customer and
currency figures the MRR and churn reports read."""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import connection
from django.db.models import Q

from core.bulk import array_of, pg_array, rows_copy
from payments.models import Invoice, InvoiceLine, InvoiceLineKind, InvoiceStatus
from subscriptions.models import Subscription, SubscriptionFeeMonth, SubscriptionFeeSpan
from subscriptions.mrr_rollups import customer_mrr_refresh, months_covered, mrr_customers_lock

# Issued and not voided: what the customer was asked to pay (the reports' definition of billed).
BILLED_INVOICE_STATUSES = [InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE]


def _fee_lines(*, customer_ids: list[int] | None, issuing_invoice_ids: list[int]):
    billed = Q(invoice__status__in=BILLED_INVOICE_STATUSES)
    if issuing_invoice_ids:
        billed |= Q(invoice_id__in=array_of(issuing_invoice_ids))
    lines = InvoiceLine.objects.filter(billed, kind=InvoiceLineKind.SUBSCRIPTION, invoice__subscription__isnull=False,
                                       period_start__isnull=False, period_end__isnull=False)
    if customer_ids is not None:
        lines = lines.filter(invoice__customer_id__in=array_of(customer_ids))
    return lines


# Driven from the customer ids through the invoice's customer index and the line's invoice index, as
# LATERAL joins kept apart by OFFSET 0 (which stops the planner flattening them), so it must probe those
# indexes per customer and per invoice. Left to itself it
# joined the other way round whenever the line table's statistics were older than its rows (a first billing
# run on young tables, a backfill after COPY): it scanned every line of every customer and probed the
# invoice of each, once per batch, which made the run, `billing verify` and the rebuild quadratic
# (1.4 s per 1,000-customer batch at 100,000 invoice lines). The billed-status test stays outside the fence:
# inside, the planner (told by statistics from before the run that open invoices were rare) ANDed the
# customer's index with a scan of the open-invoices index, every open invoice once per customer (3.6 s per
# 2,000 customers in `billing verify` after a 100,000-subscription run).
_FEE_LINES_SQL = """
SELECT i.subscription_id, i.customer_id, i.currency, l.unit_amount, l.period_start, l.period_end, l.id, s.ended_at
FROM unnest(%(customers)s::bigint[]) AS c(id)
CROSS JOIN LATERAL (
    SELECT id, subscription_id, customer_id, currency, status FROM {invoices}
    WHERE customer_id = c.id AND subscription_id IS NOT NULL OFFSET 0) AS i
CROSS JOIN LATERAL (
    SELECT id, unit_amount, period_start, period_end FROM {lines}
    WHERE invoice_id = i.id AND kind = %(kind)s AND period_start IS NOT NULL AND period_end IS NOT NULL OFFSET 0) AS l
JOIN {subscriptions} s ON s.id = i.subscription_id
WHERE i.status = ANY(%(statuses)s::text[]) OR i.id = ANY(%(issuing)s::bigint[])
"""


def _fee_line_rows(*, customer_ids: list[int] | None, issuing_invoice_ids: list[int]):
    """(subscription, customer, currency, unit amount, period start, period end, line id, subscription
    ended at) of the customers' issued plan fee lines (None: every customer's)."""
    if customer_ids is not None and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_FEE_LINES_SQL.format(invoices=Invoice._meta.db_table, lines=InvoiceLine._meta.db_table,
                                                 subscriptions=Subscription._meta.db_table),
                           {"customers": pg_array(customer_ids), "issuing": pg_array(issuing_invoice_ids),
                            "statuses": [str(s) for s in BILLED_INVOICE_STATUSES],
                            "kind": str(InvoiceLineKind.SUBSCRIPTION)})
            return cursor.fetchall()
    return (_fee_lines(customer_ids=customer_ids, issuing_invoice_ids=issuing_invoice_ids)
            .values_list("invoice__subscription_id", "invoice__customer_id", "invoice__currency", "unit_amount",
                         "period_start", "period_end", "id", "invoice__subscription__ended_at")
            .iterator(chunk_size=5000))


class FeeMonth(NamedTuple):
    """A `SubscriptionFeeMonth` row to be: a tuple, because a rebuild makes about two per customer a year
    and a model instance costs ten times more to build."""

    subscription_id: int
    month: datetime
    customer_id: int
    currency: str
    unit_amount: Decimal
    period_months: int


@dataclass(slots=True)
class FeeSpan:
    """A `SubscriptionFeeSpan` row to be, with the model's attribute names: a plain value, because a batch
    makes one per subscription and building a model instance cost more than computing the span."""

    subscription_id: int
    customer_id: int
    currency: str
    starts_at: datetime
    ends_at: datetime
    unit_amount: Decimal
    period_months: int


@dataclass
class CustomersFees:
    """What the issued plan fee lines of some customers say: each subscription's fee at each month start,
    when each subscription ended, and when each customer first paid a fee."""

    fee_months: list[FeeMonth] = field(default_factory=list)
    spans: list[FeeSpan] = field(default_factory=list)
    ended: dict[int, datetime | None] = field(default_factory=dict)
    first_paid: dict[int, datetime] = field(default_factory=dict)

    @property
    def fee_rows(self) -> list[tuple]:
        """The rows `customer_months_compute` takes."""
        return [(f.customer_id, f.currency, f.month, f.unit_amount, f.period_months, self.ended[f.subscription_id])
                for f in self.fee_months]

    @property
    def span_rows(self) -> list[tuple]:
        """The rows `customer_changes_compute` takes."""
        return [(s.subscription_id, s.customer_id, s.currency, s.starts_at, s.ends_at, s.unit_amount, s.period_months,
                 self.ended[s.subscription_id]) for s in self.spans]


def subscription_spans(*, subscription_id: int, lines: list[tuple]) -> list[FeeSpan]:
    """A subscription's fee spans from its (start, line id, customer, currency, unit amount, months, end)
    lines: between consecutive line boundaries the newest covering line (latest start, then highest id)
    is in force; neighbouring stretches asking the same fee merge into one span."""
    lines = sorted(lines)
    starts = [line[0] for line in lines]
    cuts = sorted({line[0] for line in lines} | {line[-1] for line in lines})
    spans: list[FeeSpan] = []
    for at, following in zip(cuts, cuts[1:], strict=False):
        newest = next((line for line in reversed(lines[:bisect_right(starts, at)]) if line[-1] > at), None)
        if newest is None:
            continue
        _, _, customer, currency, unit_amount, months, _ = newest
        last = spans[-1] if spans else None
        if last and last.ends_at == at and (last.customer_id, last.currency, last.unit_amount, last.period_months) == (
                customer, currency, unit_amount, months):
            last.ends_at = following
        else:
            spans.append(FeeSpan(subscription_id=subscription_id, customer_id=customer,
                                             currency=currency, starts_at=at, ends_at=following,
                                             unit_amount=unit_amount, period_months=months))
    return spans


def customers_fees_compute(*, customer_ids: list[int] | None,
                           issuing_invoice_ids: list[int] = ()) -> CustomersFees:
    """Per subscription and month start, the newest plan fee line covering it (latest period start, then
    highest line id), and each customer's first paid fee period, from one read of the customers' lines
    (None: every customer's). `issuing_invoice_ids`: invoices this transaction issues that are still drafts
    (the billing run opens them in its last statement, payments.billing.invoicing) and count as billed."""
    newest: dict[tuple[int, datetime], tuple] = {}
    by_subscription: dict[int, list[tuple]] = defaultdict(list)
    fees = CustomersFees()
    rows = _fee_line_rows(customer_ids=customer_ids, issuing_invoice_ids=list(issuing_invoice_ids))
    for sub, customer, currency, unit_amount, start, end, pk, ended_at in rows:
        fees.ended[sub] = ended_at
        if unit_amount > 0 and (customer not in fees.first_paid or start < fees.first_paid[customer]):
            fees.first_paid[customer] = start
        months = (end.year - start.year) * 12 + end.month - start.month
        by_subscription[sub].append((start, pk, customer, currency, unit_amount, months, end))
        for month in months_covered(start=start, end=end):
            candidate = (start, pk, customer, currency, unit_amount, months)
            if (sub, month) not in newest or newest[(sub, month)][:2] < candidate[:2]:
                newest[(sub, month)] = candidate
    fees.fee_months = [FeeMonth(subscription_id=sub, month=month, customer_id=customer, currency=currency,
                                unit_amount=unit_amount, period_months=months)
                       for (sub, month), (_, _, customer, currency, unit_amount, months) in sorted(newest.items())]
    fees.spans = [span for sub, lines in sorted(by_subscription.items())
                  for span in subscription_spans(subscription_id=sub, lines=lines)]
    return fees


def _fee_key(fee: FeeMonth) -> tuple:
    return (fee.subscription_id, fee.month, fee.customer_id, fee.currency, Decimal(fee.unit_amount), fee.period_months)


def _fee_months_replace(*, customer_ids: list[int], fee_months: list[FeeMonth]) -> None:
    """Store the customers' fee months, touching only the rows that changed (a renewal only adds)."""
    # Plain values, not model instances: a batch reads one row per subscription and building instances cost
    # more than the read.
    stored = {(sub, month, customer, currency, Decimal(unit_amount), months): pk
              for pk, sub, month, customer, currency, unit_amount, months in
              SubscriptionFeeMonth.objects.filter(customer_id__in=array_of(customer_ids)).values_list(
                  "pk", "subscription_id", "month", "customer_id", "currency", "unit_amount", "period_months")}
    wanted = {_fee_key(f): f for f in fee_months}
    gone = [pk for key, pk in stored.items() if key not in wanted]
    if gone:
        SubscriptionFeeMonth.objects.filter(pk__in=array_of(gone)).delete()
    fee_months_copy(fee_months=[f for key, f in wanted.items() if key not in stored])


def _span_key(span: FeeSpan) -> tuple:
    return (span.subscription_id, span.starts_at, span.ends_at, span.customer_id, span.currency,
            Decimal(span.unit_amount), span.period_months)


def _spans_replace(*, customer_ids: list[int], spans: list[FeeSpan]) -> None:
    """Store the customers' fee spans, touching only the rows that changed (a same-price renewal moves
    one span's end)."""
    stored = {(sub, starts, ends, customer, currency, Decimal(unit_amount), months): pk
              for pk, sub, starts, ends, customer, currency, unit_amount, months in
              SubscriptionFeeSpan.objects.filter(customer_id__in=array_of(customer_ids)).values_list(
                  "pk", "subscription_id", "starts_at", "ends_at", "customer_id", "currency", "unit_amount",
                  "period_months")}
    wanted = {_span_key(s): s for s in spans}
    gone = [pk for key, pk in stored.items() if key not in wanted]
    if gone:
        SubscriptionFeeSpan.objects.filter(pk__in=array_of(gone)).delete()
    spans_copy(spans=[s for key, s in wanted.items() if key not in stored])


def spans_copy(*, spans: list[FeeSpan]) -> None:
    """One COPY, however many rows."""
    if spans:
        rows_copy(model=SubscriptionFeeSpan, fields=("subscription", "customer", "currency", "starts_at",
                                                     "ends_at", "unit_amount", "period_months"),
                  rows=((s.subscription_id, s.customer_id, s.currency, s.starts_at, s.ends_at, s.unit_amount,
                         s.period_months) for s in spans))


def fee_months_copy(*, fee_months: list[FeeMonth]) -> None:
    """One COPY, however many rows (a first invoice of a yearly plan writes twelve per subscription)."""
    if not fee_months:
        return
    rows_copy(model=SubscriptionFeeMonth, fields=("subscription", "month", "customer", "currency", "unit_amount",
                                                  "period_months"),
              rows=((f.subscription_id, f.month, f.customer_id, f.currency, f.unit_amount, f.period_months)
                    for f in fee_months))


def mrr_rollups_refresh(*, customer_ids: Iterable[int], issuing_invoice_ids: Iterable[int] = ()) -> None:
    """After the issued plan fee lines of these customers changed (an invoice issued or voided): rewrite
    their fee months and bring their MRR rollups up to date. A constant number of statements per call,
    however many customers, so the billing run makes one call per batch (passing its invoices, still drafts
    until the batch's last statement, as `issuing_invoice_ids`)."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    mrr_customers_lock(customer_ids=ids)
    fees = customers_fees_compute(customer_ids=ids, issuing_invoice_ids=list(issuing_invoice_ids))
    _fee_months_replace(customer_ids=ids, fee_months=fees.fee_months)
    _spans_replace(customer_ids=ids, spans=fees.spans)
    customer_mrr_refresh(customer_ids=ids, fee_rows=fees.fee_rows, span_rows=fees.span_rows,
                         first_paid={c: fees.first_paid.get(c) for c in ids}, locked=True)
