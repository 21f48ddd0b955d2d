"""Money reports: the payment summary, revenue, collected by month and method, and receivables.

The first three read whole UTC days from the daily rollups (payments.money_models) and a partial first or
last day from the invoices, payments and refunds, grouped by the same definitions
(payments.services.money_rollups.ROLLUPS); receivables read the partial index of open invoices. Amounts are
integer minor units per currency, never converted between currencies."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncMonth

from payments.models import Invoice, InvoiceStatus, PaymentDay, PaymentMethod, PaymentStatus, RevenueDay
from payments.services.money_rollups import ROLLUPS, rollup_grouped
from reports.selectors.periods import ReportRange
from subscriptions.models import Plan


def _currency_q(period: ReportRange, field: str = "currency") -> Q:
    return Q(**{field: period.currency}) if period.currency else Q()


@dataclass(frozen=True)
class PaymentSummaryRow:
    currency: str
    method: str
    status: str
    count: int
    amount: int
    amount_refunded: int


def report_payment_summary(*, period: ReportRange) -> list[PaymentSummaryRow]:
    """Payments created in the period: count, amount and amount refunded per currency x method x status.
    Every method and status appears for each currency seen (zeros included), so a rail with no payments
    is visibly zero rather than missing. Whole UTC days from the PaymentDay rollup, a partial first or
    last day from the payments themselves (indexed on created_at): two queries whatever the range."""
    days = day_split(period)
    found: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    if days.whole:
        for currency, method, status, *figures in (
                PaymentDay.objects.filter(_currency_q(period), day__gte=days.first, day__lt=days.end)
                .values_list("currency", "method", "status")
                .annotate(n=Sum("count"), amount=Sum("amount"), refunded=Sum("amount_refunded")).order_by()):
            _accumulate(found[(currency, method, status)], figures)
    for (_day, currency, method, status), figures in _edge_rows(period=period, days=days, rollup="payment_summary",
                                                                 sources=("payment",)).items():
        _accumulate(found[(currency, method, status)], figures)
    currencies = sorted({c for (c, _, _), (n, _, _) in found.items() if n}
                        | ({period.currency} if period.currency else set()))
    return [PaymentSummaryRow(currency=c, method=m, status=s, count=found.get((c, m, s), (0, 0, 0))[0],
                              amount=found.get((c, m, s), (0, 0, 0))[1],
                              amount_refunded=found.get((c, m, s), (0, 0, 0))[2])
            for c in currencies for m in PaymentMethod.values for s in PaymentStatus.values]


def _accumulate(total: list[int], figures) -> None:
    for index, value in enumerate(figures):
        total[index] += int(value or 0)


@dataclass(frozen=True)
class DaySplit:
    """A range as whole UTC days [first, end) the rollups answer, and the partial days at either side
    (`edges`, instants) the source rows answer."""

    first: date | None
    end: date | None
    edges: tuple[tuple[datetime, datetime], ...]

    @property
    def whole(self) -> bool:
        return self.first is not None


def day_split(period: ReportRange) -> DaySplit:
    start, end = period.start.astimezone(UTC), period.end.astimezone(UTC)
    start_day = datetime.combine(start.date(), time(), UTC)
    first = start_day if start == start_day else start_day + timedelta(days=1)
    last = datetime.combine(end.date(), time(), UTC)
    if first >= last:
        return DaySplit(first=None, end=None, edges=((start, end),) if start < end else ())
    edges = ((start, first),) if start < first else ()
    if last < end:
        edges += ((last, end),)
    return DaySplit(first=first.date(), end=last.date(), edges=edges)


def _edge_rows(*, period: ReportRange, days: DaySplit, rollup: str, sources: tuple[str, ...]) -> dict[tuple, list]:
    """The partial days, grouped exactly as the rollup groups them, from the source rows (one query)."""
    if not days.edges:
        return {}
    definition = ROLLUPS[rollup]
    where = {}
    for name in sources:
        field = definition.source(name).time_field
        within = Q()
        for start, end in days.edges:
            within |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
        where[name] = within & _currency_q(period)
    return rollup_grouped(rollup=definition, where=where)


REVENUE_GROUPS = ("month", "plan", "method")


@dataclass
class RevenueRow:
    currency: str
    # The month (ISO date of its first day), the plan code or the payment method; None where the figure
    # has no such key (an invoice without a plan; invoiced and written-off amounts under group_by=method).
    key: str | None
    invoiced: int = 0
    collected: int = 0
    refunded: int = 0
    written_off: int = 0

    @property
    def net(self) -> int:
        return self.collected - self.refunded


_REVENUE_FIGURES = ("invoices", "invoiced", "written_off", "payments", "collected", "refunds", "refunded")


def report_revenue(*, period: ReportRange, group_by: str) -> list[RevenueRow]:
    """Invoiced (totals of invoices issued in the period and not voided), collected (payments that
    succeeded in the period), refunded (refunds that succeeded, by when they were made), net (collected -
    refunded) and written off (still due on invoices issued in the period and now uncollectible), per
    currency and group. Whole UTC days from the RevenueDay rollup, partial first and last days from the
    source rows: two queries, three by plan (the plans' codes)."""
    days = day_split(period)
    found: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(_REVENUE_FIGURES))
    if days.whole:
        group = {"month": TruncMonth("day"), "plan": F("plan_id"), "method": F("method")}[group_by]
        for currency, key, *figures in (
                RevenueDay.objects.filter(_currency_q(period), day__gte=days.first, day__lt=days.end)
                .annotate(report_key=group).values_list("currency", "report_key")
                .annotate(*[Sum(f) for f in _REVENUE_FIGURES]).order_by()):
            _accumulate(found[(currency, key)], figures)
    edges = _edge_rows(period=period, days=days, rollup="revenue", sources=("invoice", "payment", "refund"))
    for (day, currency, method, plan_id), figures in edges.items():
        key = {"month": day.replace(day=1), "plan": plan_id, "method": method}[group_by]
        _accumulate(found[(currency, key)], figures)
    keys = _revenue_keys(group_by=group_by, keys={key for _, key in found})
    rows: dict[tuple[str, str | None], RevenueRow] = {}
    for (currency, key), (invoices, invoiced, written_off, payments, collected, refunds, refunded) in found.items():
        if not (invoices or payments or refunds):
            continue  # everything counted here moved away (a voided invoice): as if never there
        row = rows.setdefault((currency, keys[key]), RevenueRow(currency=currency, key=keys[key]))
        row.invoiced += invoiced
        row.written_off += written_off
        row.collected += collected
        row.refunded += refunded
    return sorted(rows.values(), key=lambda r: (r.currency, r.key is not None, r.key or ""))


def _revenue_keys(*, group_by: str, keys: set) -> dict:
    """Each rollup key as the report shows it: a month's ISO date, a plan's code, a method; None for an
    invoice without a plan (plan 0) and for invoices under group_by=method (method "")."""
    if group_by == "month":
        return {key: key.isoformat() for key in keys}
    if group_by == "plan":
        codes = dict(Plan.objects.filter(pk__in=[k for k in keys if k]).values_list("pk", "code")) if any(keys) else {}
        return {key: codes.get(key) for key in keys}
    return {key: key or None for key in keys}


# Days past due that open each aging bucket; the last bucket is open-ended.
AGE_BUCKETS = (("current", None), ("1-30", 1), ("31-60", 31), ("61-90", 61), ("over_90", 91))


@dataclass(frozen=True)
class ReceivablesRow:
    currency: str
    bucket: str
    count: int
    amount_due: int


def report_receivables(*, period: ReportRange) -> list[ReceivablesRow]:
    """Invoices open today and issued before the period's end, by how many whole days they were past
    their due date at the period's end (an invoice without a due date, or not yet due, is current). One
    query, over the partial index of open invoices; every bucket appears for each currency seen."""
    at = period.end
    open_invoices = Invoice.objects.filter(_currency_q(period), status=InvoiceStatus.OPEN, issued_at__lt=at)
    aggregates = {}
    for name, q in _bucket_filters(at).items():
        # Not count(id): the partial index invoice_open_receivable holds every column read, so the open
        # invoices are counted from it alone (an index-only scan). issued_at is never null here (filtered).
        aggregates[f"{name}__n"] = Count("issued_at", filter=q)
        aggregates[f"{name}__due"] = Coalesce(Sum("amount_due", filter=q), 0)
    rows = open_invoices.values("currency").annotate(**aggregates).order_by("currency")
    seen = {r["currency"]: r for r in rows}
    if period.currency:
        seen.setdefault(period.currency, {})
    return [ReceivablesRow(currency=c, bucket=name, count=seen[c].get(f"{name}__n", 0),
                           amount_due=seen[c].get(f"{name}__due", 0))
            for c in sorted(seen) for name, _ in AGE_BUCKETS]


def _bucket_filters(at: datetime) -> dict[str, Q]:
    """A whole day past due begins 24 hours after the due date: due at 10:00 yesterday is 1 day late from
    10:00 today."""
    filters = {"current": Q(due_date__isnull=True) | Q(due_date__gt=at - timedelta(days=1))}
    bounds = [lower for _, lower in AGE_BUCKETS[1:]]
    for (name, lower), upper in zip(AGE_BUCKETS[1:], [*bounds[1:], None], strict=True):
        q = Q(due_date__lte=at - timedelta(days=lower))
        if upper is not None:
            q &= Q(due_date__gt=at - timedelta(days=upper))
        filters[name] = q
    return filters


@dataclass(frozen=True)
class CollectedRow:
    currency: str
    # First day of the UTC month, ISO.
    month: str
    method: str
    amount: int


def report_collected_by_month_and_method(*, period: ReportRange) -> list[CollectedRow]:
    """Money collected (payments that succeeded in the period) per currency, month and method: the
    revenue chart's stacks. Whole days from RevenueDay, partial ones from the payments: two queries."""
    days = day_split(period)
    found: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    if days.whole:
        for currency, month, method, *figures in (
                RevenueDay.objects.filter(_currency_q(period), day__gte=days.first, day__lt=days.end, payments__gt=0)
                .annotate(month=TruncMonth("day")).values_list("currency", "month", "method")
                .annotate(Sum("payments"), Sum("collected")).order_by()):
            _accumulate(found[(currency, month, method)], figures)
    edges = _edge_rows(period=period, days=days, rollup="revenue", sources=("payment",))
    for (day, currency, method, _plan), figures in edges.items():
        _accumulate(found[(currency, day.replace(day=1), method)], [figures[3], figures[4]])
    return [CollectedRow(currency=c, month=m.isoformat(), method=method, amount=amount)
            for (c, m, method), (n, amount) in sorted(found.items()) if n]
