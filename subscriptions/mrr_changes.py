"""A customer's MRR as a step function of time: the instants where it changes (`CustomerMrrChange`),
computed from its subscriptions' fee spans (`SubscriptionFeeSpan`) and their ends. Kept by
`customer_mrr_refresh` in the transaction of every change that moves the other MRR rollups; read by the
reports for ranges that start or end inside a month.

A span covers [start, end), a subscription counts while `ended_at` is after the instant: the customer's MRR
is right-continuous and can only change at a span's start or end or a subscription's end, so evaluating it
at those instants (and nowhere else) finds every change."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from core.bulk import array_of, rows_copy
from core.money import round_minor
from subscriptions.mrr_models import CustomerMrrChange, SubscriptionFeeSpan

# (subscription, customer, currency, start, end, unit amount, period months, subscription ended at)
SpanRow = tuple[int, int, str, datetime, datetime, Decimal, int, datetime | None]
# {(customer, currency, at): (mrr before, mrr after, covered before, covered after)}
CustomerChanges = dict[tuple[int, str, datetime], tuple[int, int, bool, bool]]

CHANGE_FIELDS = ("customer", "currency", "changed_at", "mrr_before", "mrr_after", "covered_before", "covered_after")


def customer_span_rows(*, customer_ids: list[int] | None) -> Iterable[SpanRow]:
    """The stored fee spans of the named customers (None: every customer) with their subscription's end."""
    spans = SubscriptionFeeSpan.objects.all()
    if customer_ids is not None:
        spans = spans.filter(customer_id__in=array_of(customer_ids))
    return spans.values_list("subscription_id", "customer_id", "currency", "starts_at", "ends_at",
                             "unit_amount", "period_months", "subscription__ended_at").iterator(chunk_size=5000)


def customer_changes_compute(*, span_rows: Iterable[SpanRow]) -> CustomerChanges:
    """Every (customer, currency)'s MRR changes: at each instant where a span starts or ends or a
    subscription ends, the live spans covering it summed exactly and rounded once, half-up; a row where the
    value or the coverage differs from the one before."""
    groups: dict[tuple[int, str], list[SpanRow]] = defaultdict(list)
    for row in span_rows:
        groups[(row[1], row[2])].append(row)
    changes: CustomerChanges = {}
    for (customer_id, currency), spans in groups.items():
        instants = sorted({at for _, _, _, start, end, _, _, ended in spans
                           for at in (start, end, ended) if at is not None})
        before = (0, False)
        for at in instants:
            live = [Decimal(unit) / Decimal(months or 1) for _, _, _, start, end, unit, months, ended in spans
                    if start <= at < end and (ended is None or ended > at)]
            after = (round_minor(sum(live, Decimal(0))) if live else 0, bool(live))
            if after != before:
                changes[(customer_id, currency, at)] = (before[0], after[0], before[1], after[1])
            before = after
    return changes


def customer_changes_replace(*, customer_ids: list[int], changes: CustomerChanges) -> None:
    """Store the customers' changes, touching only the rows that differ (a same-price renewal moves only
    the drop at the end of the paid time)."""
    stored = {(c, cur, at): (pk, (b, a, cb, ca)) for pk, c, cur, at, b, a, cb, ca in
              CustomerMrrChange.objects.filter(customer_id__in=array_of(customer_ids)).values_list(
                  "pk", *CHANGE_FIELDS)}
    gone = [pk for key, (pk, values) in stored.items() if changes.get(key) != values]
    if gone:
        CustomerMrrChange.objects.filter(pk__in=array_of(gone)).delete()
    changes_copy(changes={key: values for key, values in changes.items()
                          if key not in stored or stored[key][1] != values})


def changes_copy(*, changes: CustomerChanges) -> None:
    """One COPY, however many rows."""
    if changes:
        rows_copy(model=CustomerMrrChange, fields=CHANGE_FIELDS,
                  rows=((*key, *values) for key, values in changes.items()))
