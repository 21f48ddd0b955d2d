"""The MRR rollups recomputed from scratch from the invoice lines and subscriptions, customer by customer
in chunks (memory stays bounded): `mrr_rollups_rebuild` writes them (the backfill for existing data,
`manage.py billing rollups-rebuild`), `mrr_rollup_mismatches` compares them with what is stored (`manage.py
billing verify`)."""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from core.bulk import array_of, rows_copy
from payments.services.mrr_rollups import FeeMonth, FeeSpan, customers_fees_compute, fee_months_copy, spans_copy
from subscriptions.models import (
    Customer,
    CustomerFirstFee,
    CustomerMrrChange,
    CustomerMrrMonth,
    MrrMonth,
    SubscriptionFeeMonth,
    SubscriptionFeeSpan,
)
from subscriptions.mrr_changes import CHANGE_FIELDS, CustomerChanges, changes_copy, customer_changes_compute
from subscriptions.mrr_rollups import (
    MONTH_FIGURES,
    customer_months_compute,
    month_contributions,
    mrr_month_add,
)

CUSTOMERS_PER_CHUNK = 2000


@dataclass
class CustomerChunk:
    """The rollup rows a chunk of customers should have."""

    customer_ids: list[int]
    fee_months: list[FeeMonth]
    spans: list[FeeSpan]
    changes: CustomerChanges
    months: dict[tuple[int, str, datetime], int]
    first_paid: dict[int, datetime]


@dataclass
class Recomputed:
    chunks: Iterator[CustomerChunk]
    # Filled as the chunks are consumed: {(currency, month): figures}.
    month_totals: dict[tuple[str, datetime], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(MONTH_FIGURES)))


def _chunks(totals: dict) -> Iterator[CustomerChunk]:
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), CUSTOMERS_PER_CHUNK):
        chunk = ids[start:start + CUSTOMERS_PER_CHUNK]
        fees = customers_fees_compute(customer_ids=chunk)
        months = customer_months_compute(fee_rows=fees.fee_rows)
        for key, figures in month_contributions(months=months, first_paid=fees.first_paid).items():
            totals[key] = [a + b for a, b in zip(totals[key], figures, strict=True)]
        yield CustomerChunk(customer_ids=chunk, fee_months=fees.fee_months, spans=fees.spans,
                            changes=customer_changes_compute(span_rows=fees.span_rows), months=months,
                            first_paid=fees.first_paid)


def mrr_rollups_recompute() -> Recomputed:
    recomputed = Recomputed(chunks=iter(()))
    recomputed.chunks = _chunks(recomputed.month_totals)
    return recomputed


def mrr_rollups_rebuild() -> dict[str, int]:
    """Replace every MRR rollup row with its recomputation, in one transaction (readers see the old rows
    until it commits). Returns the rows written per table."""
    written = dict.fromkeys(("fee_months", "fee_spans", "changes", "customer_months", "first_fees", "months"), 0)
    with transaction.atomic():
        for model in (SubscriptionFeeMonth, SubscriptionFeeSpan, CustomerMrrChange, CustomerMrrMonth,
                      CustomerFirstFee, MrrMonth):
            model.objects.all().delete()
        recomputed = mrr_rollups_recompute()
        for chunk in recomputed.chunks:
            fee_months_copy(fee_months=chunk.fee_months)
            spans_copy(spans=chunk.spans)
            changes_copy(changes=chunk.changes)
            rows_copy(model=CustomerMrrMonth, fields=("customer", "currency", "month", "mrr"),
                      rows=((c, cur, m, v) for (c, cur, m), v in chunk.months.items()))
            rows_copy(model=CustomerFirstFee, fields=("customer", "first_paid_at"), rows=chunk.first_paid.items())
            written["fee_months"] += len(chunk.fee_months)
            written["fee_spans"] += len(chunk.spans)
            written["changes"] += len(chunk.changes)
            written["customer_months"] += len(chunk.months)
            written["first_fees"] += len(chunk.first_paid)
        mrr_month_add(deltas=recomputed.month_totals)
        written["months"] = MrrMonth.objects.count()
    return written


def mrr_rollup_mismatches() -> list[dict]:
    """Every rollup row that differs from its recomputation from the invoice lines and subscriptions (a
    missing row, an extra one, another figure)."""
    mismatches: list[dict] = []
    recomputed = mrr_rollups_recompute()
    for chunk in recomputed.chunks:
        customer_ids = array_of(chunk.customer_ids)
        # Stored rows as plain values: model instances cost verify more than the comparison itself.
        _compare(mismatches, "mrr_fee_month", stored={
            (sub, month): tuple(values) for sub, month, *values in SubscriptionFeeMonth.objects.filter(
                customer_id__in=customer_ids).values_list("subscription_id", "month", "customer_id", "currency",
                                                          "unit_amount", "period_months")},
            expected={(f.subscription_id, f.month): (f.customer_id, f.currency, f.unit_amount, f.period_months)
                      for f in chunk.fee_months})
        _compare(mismatches, "mrr_fee_span",
                 stored={(sub, starts): tuple(values) for sub, starts, *values in SubscriptionFeeSpan.objects.filter(
                     customer_id__in=customer_ids).values_list("subscription_id", "starts_at", "ends_at", "customer_id",
                                                               "currency", "unit_amount", "period_months")},
                 expected={_span_key(s): _span_values(s) for s in chunk.spans})
        _compare(mismatches, "mrr_change", stored={
            (c, cur, at): tuple(values) for c, cur, at, *values in CustomerMrrChange.objects.filter(
                customer_id__in=customer_ids).values_list(*CHANGE_FIELDS)}, expected=chunk.changes)
        _compare(mismatches, "mrr_customer_month", stored={
            (c, cur, m): v for c, cur, m, v in CustomerMrrMonth.objects.filter(customer_id__in=customer_ids)
            .values_list("customer_id", "currency", "month", "mrr")}, expected=chunk.months)
        _compare(mismatches, "mrr_first_paid", stored=dict(
            CustomerFirstFee.objects.filter(customer_id__in=customer_ids).values_list("customer_id", "first_paid_at")),
            expected=chunk.first_paid)
    stored = {(cur, m): [getattr(row, f) for f in MONTH_FIGURES] for row in MrrMonth.objects.all()
              for cur, m in [(row.currency, row.month)]}
    _compare(mismatches, "mrr_month", stored={k: v for k, v in stored.items() if any(v)},
             expected={k: v for k, v in recomputed.month_totals.items() if any(v)})
    return mismatches


def _span_key(span: FeeSpan) -> tuple:
    return (span.subscription_id, span.starts_at)


def _span_values(span: FeeSpan) -> tuple:
    return (span.ends_at, span.customer_id, span.currency, span.unit_amount, span.period_months)


def _compare(mismatches: list[dict], kind: str, *, stored: dict, expected: dict) -> None:
    for key in sorted(stored.keys() | expected.keys(), key=str):
        if stored.get(key) != expected.get(key):
            mismatches.append({"kind": kind, "key": key, "stored": stored.get(key), "recomputed": expected.get(key)})
