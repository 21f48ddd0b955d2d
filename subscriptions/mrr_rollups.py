"""Keeping the MRR rollups (subscriptions.mrr_models) true inside the transaction that changes them.

`customer_mrr_refresh` recomputes the named customers' MRR at each month start from their subscriptions'
fee months, compares with what was stored, and adds the difference of each customer's contribution to the
per-currency month rows (`MrrMonth`) with increments: a constant number of statements however many
customers a batch names. Payments calls it after writing fee months (an invoice issued or voided); the
subscription transitions call it when a subscription ends. Both first take `mrr_customers_lock`, so two
transactions touching one customer apply their differences one after the other."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection

from core.bulk import array_of, pg_array, rows_copy
from core.increments import increments_add
from core.money import round_minor
from subscriptions.models import Subscription
from subscriptions.mrr_changes import SpanRow, customer_changes_compute, customer_changes_replace, customer_span_rows
from subscriptions.mrr_models import CustomerFirstFee, CustomerMrrMonth, MrrMonth, SubscriptionFeeMonth
from subscriptions.periods import add_months

MOVEMENTS = ("new", "expansion", "contraction", "churned", "reactivated")
# The figures of an MrrMonth row, in the order of a contribution vector.
MONTH_FIGURES = ("mrr", "customers_covered", "customers_paying", *MOVEMENTS, "customers_churned")
# The first key of pg_advisory_xact_lock(int, int): this lock's namespace, so a customer id never collides
# with another advisory lock of the application.
_MRR_LOCK_NAMESPACE = 7_301

# {(customer id, currency, month): MRR in minor units}
CustomerMonths = dict[tuple[int, str, datetime], int]


def month_start(instant: datetime) -> datetime:
    """The first instant of the UTC calendar month holding `instant`."""
    return instant.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def months_covered(*, start: datetime, end: datetime) -> list[datetime]:
    """The UTC month starts inside [start, end)."""
    month = month_start(start)
    if month < start:
        month = add_months(month, 1)
    covered = []
    while month < end:
        covered.append(month)
        month = add_months(month, 1)
    return covered


# The customers' subscription rows first (FOR KEY SHARE, ascending ids), then one advisory lock per
# customer (ascending ids), in one statement: the InitPlan runs before the first lock is taken.
_LOCK_SQL = """
WITH held AS MATERIALIZED (
    SELECT id FROM {subscriptions} WHERE customer_id = ANY(%(ids)s::bigint[]) ORDER BY id FOR KEY SHARE)
SELECT pg_advisory_xact_lock((%(namespace)s::bigint << 48) + c) FROM unnest(%(ids)s::bigint[]) AS c
WHERE (SELECT count(*) FROM held) >= 0
"""


def mrr_customers_lock(*, customer_ids: Iterable[int]) -> None:
    """Serialize rollup writers per customer until the transaction ends.

    The subscription rows come first because every writer's transaction ends up needing them: the
    cancellations hold one FOR UPDATE before they get here, and an invoice's deferred foreign key takes a
    share lock on it at COMMIT. Taking the advisory lock first would let an invoice hold it while its COMMIT
    waits for a cancellation that waits for the advisory lock: a deadlock. SQLite, the embedded default,
    has one writer at a time anyway."""
    ids = sorted(set(customer_ids))
    if ids and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_LOCK_SQL.format(subscriptions=Subscription._meta.db_table),
                           {"ids": pg_array(ids), "namespace": _MRR_LOCK_NAMESPACE})


def customer_months_compute(*, fee_rows: Iterable[tuple]) -> CustomerMonths:
    """Customer months from (customer, currency, month, unit amount, period months, subscription ended at)
    fee rows: a subscription ended by the month's start counts nothing; each subscription's fee per month
    is summed exactly and the customer's sum rounded once, half-up."""
    exact: dict[tuple[int, str, datetime], Decimal] = defaultdict(Decimal)
    for customer_id, currency, month, unit_amount, period_months, ended_at in fee_rows:
        if ended_at is None or ended_at > month:
            exact[(customer_id, currency, month)] += Decimal(unit_amount) / Decimal(period_months or 1)
    return {key: round_minor(value) for key, value in exact.items()}


def mrr_movement_classify(before: int, after: int, *, paid_earlier: bool) -> str | None:
    """A customer's MRR movement from `before` to `after` (None: no change)."""
    if before == after:
        return None
    if before == 0:
        return "reactivated" if paid_earlier else "new"
    if after == 0:
        return "churned"
    return "expansion" if after > before else "contraction"


MonthFigures = dict[tuple[str, datetime], list[int]]


def month_contributions(*, months: CustomerMonths, first_paid: dict[int, datetime]) -> MonthFigures:
    """What the customers in `months` add to each (currency, month) row: MRR at the month's start, whether
    covered and paying then, and their movement over [month, next month)."""
    totals: MonthFigures = defaultdict(lambda: [0] * len(MONTH_FIGURES))
    # A rebuild steps from a few dozen distinct months about four million times: shift each once.
    shifts: dict[tuple[datetime, int], datetime] = {}

    def shift(month: datetime, by: int) -> datetime:
        if (month, by) not in shifts:
            shifts[(month, by)] = add_months(month, by)
        return shifts[(month, by)]

    keys = set()
    for customer_id, currency, month in months:
        keys.add((customer_id, currency, month))
        keys.add((customer_id, currency, shift(month, -1)))
    for customer_id, currency, month in keys:
        before = months.get((customer_id, currency, month))
        after = months.get((customer_id, currency, shift(month, 1)), 0)
        row = totals[(currency, month)]
        if before is not None:
            row[0] += before
            row[1] += 1
            row[2] += before > 0
        paid = first_paid.get(customer_id)
        movement = mrr_movement_classify(before or 0, after, paid_earlier=paid is not None and paid < month)
        if movement:
            row[3 + MOVEMENTS.index(movement)] += after - (before or 0)
            row[-1] += movement == "churned"
    return totals


@dataclass
class _Stored:
    """The customers' stored months (and their row ids) and first fees."""

    months: CustomerMonths = field(default_factory=dict)
    row_ids: dict[tuple[int, str, datetime], int] = field(default_factory=dict)
    first: dict[int, datetime] = field(default_factory=dict)


def _stored(customer_ids: list[int]) -> _Stored:
    stored = _Stored()
    for pk, c, cur, m, mrr in CustomerMrrMonth.objects.filter(customer_id__in=array_of(customer_ids)).values_list(
            "pk", "customer_id", "currency", "month", "mrr"):
        stored.months[(c, cur, m)], stored.row_ids[(c, cur, m)] = mrr, pk
    stored.first = dict(CustomerFirstFee.objects.filter(customer_id__in=array_of(customer_ids))
                        .values_list("customer_id", "first_paid_at"))
    return stored


def customer_fee_rows(*, customer_ids: list[int] | None) -> Iterable[tuple]:
    """The fee month rows of the named customers (None: every customer) with their subscription's end."""
    rows = SubscriptionFeeMonth.objects.all()
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=array_of(customer_ids))
    return rows.values_list("customer_id", "currency", "month", "unit_amount", "period_months",
                            "subscription__ended_at").iterator(chunk_size=5000)


def customer_mrr_refresh(*, customer_ids: Iterable[int], fee_rows: Iterable[tuple] | None = None,
                         span_rows: Iterable[SpanRow] | None = None,
                         first_paid: dict[int, datetime | None] | None = None, locked: bool = False) -> None:
    """Bring the named customers' rollups up to date with their fee months, fee spans and subscriptions.
    `fee_rows`, `span_rows` and `first_paid`: when the caller (payments, after an invoice change) has just
    recomputed them, else they are read (the fee months and spans) or still hold (a subscription ending does
    not move the first paid fee). `locked`: the caller already holds `mrr_customers_lock` on them."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    if not locked:
        mrr_customers_lock(customer_ids=ids)
    customer_changes_replace(customer_ids=ids, changes=customer_changes_compute(
        span_rows=customer_span_rows(customer_ids=ids) if span_rows is None else span_rows))
    stored = _stored(ids)
    old_months, old_first = stored.months, stored.first
    new_months = customer_months_compute(fee_rows=customer_fee_rows(customer_ids=ids) if fee_rows is None
                                         else fee_rows)
    new_first = dict(old_first)
    if first_paid is not None:
        new_first = {c: at for c, at in {**old_first, **first_paid}.items() if at is not None}
    if old_months == new_months and old_first == new_first:
        return
    old = month_contributions(months=old_months, first_paid=old_first)
    new = month_contributions(months=new_months, first_paid=new_first)
    zero = [0] * len(MONTH_FIGURES)
    mrr_month_add(deltas={key: [n - o for n, o in zip(new.get(key, zero), old.get(key, zero), strict=True)]
                          for key in old.keys() | new.keys()})
    _customer_rows_replace(ids=ids, stored=stored, months=new_months, first=new_first)


def _customer_rows_replace(*, ids: list[int], stored: _Stored, months: CustomerMonths,
                           first: dict[int, datetime]) -> None:
    """Store the customers' months and first fees, touching only what changed (a renewal only adds)."""
    old_months = stored.months
    changed = [stored.row_ids[key] for key, mrr in old_months.items() if months.get(key) != mrr]
    if changed:
        CustomerMrrMonth.objects.filter(pk__in=array_of(changed)).delete()
    added = [(c, cur, m, mrr) for (c, cur, m), mrr in months.items() if old_months.get((c, cur, m)) != mrr]
    if added:
        rows_copy(model=CustomerMrrMonth, fields=("customer", "currency", "month", "mrr"), rows=added)
    if stored.first != first:
        CustomerFirstFee.objects.filter(customer_id__in=array_of(ids)).delete()
        rows_copy(model=CustomerFirstFee, fields=("customer", "first_paid_at"), rows=first.items())


_ADD_SQL = """INSERT INTO subscriptions_mrrmonth (currency, month, {columns}) VALUES {values}
ON CONFLICT (currency, month) DO UPDATE SET {increments}"""


def mrr_month_add(*, deltas: MonthFigures) -> None:
    """Add each (currency, month)'s figures to its row, creating it; in (currency, month) order, so
    concurrent writers lock the rows in one order (at the end of an `increments_deferred` block: the billing
    run's batch)."""
    increments_add(name=MrrMonth._meta.db_table, deltas=deltas, write=_mrr_month_write)


def _mrr_month_write(deltas: MonthFigures) -> None:
    changed = sorted((key, figures) for key, figures in deltas.items() if any(figures))
    table = MrrMonth._meta.db_table
    increments = ", ".join(f"{f} = {table}.{f} + EXCLUDED.{f}" for f in MONTH_FIGURES)
    placeholders = "(" + ", ".join(["%s"] * (2 + len(MONTH_FIGURES))) + ")"
    # Raw SQL binds the datetime as the driver writes it: on SQLite that is not the text the ORM stores and
    # looks up ("+00:00" appended), so the month goes through the backend's own adaptation.
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for start in range(0, len(changed), 1000):
            chunk = changed[start:start + 1000]
            cursor.execute(_ADD_SQL.format(columns=", ".join(MONTH_FIGURES), increments=increments,
                                           values=", ".join([placeholders] * len(chunk))),
                           [value for (currency, month), figures in chunk
                            for value in (currency, adapt(month), *figures)])
