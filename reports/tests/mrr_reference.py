"""The reports' MRR and churn as first written: computed from the invoice lines at every instant on each
call (about 28 s for 100,000 customers). Kept as the reference the rollup-backed `reports.selectors`
must equal on generated histories.

A customer's MRR at an instant is what its subscriptions' period fees come to per month: for each
subscription not ended by then, the plan fee line (`kind=subscription`) of an issued, not voided invoice
whose period covers the instant (the newest when several do), divided by the calendar months of that
period, summed per customer and rounded once, half-up, to the minor unit. Trials, free plans and
paused subscriptions past the period they paid for count nothing. A plan change is seen from the
renewal that bills the new plan: its proration is one-off revenue (see the revenue report).

Between two instants every customer's change falls in exactly one movement (new, expansion,
contraction, churned, reactivated), so the movements add up to the change in MRR, in integers."""

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Min

from core.bulk import array_of
from core.money import round_minor
from payments.models import InvoiceLine, InvoiceLineKind
from payments.services.mrr_rollups import BILLED_INVOICE_STATUSES
from reports.selectors.mrr import ChurnRow, MrrPoint, _rate
from reports.selectors.periods import ReportRange, month_windows

# One row per (instant, subscription): the newest plan fee line covering the instant.
_RATES_SQL = """
SELECT DISTINCT ON (p.at, i.subscription_id)
       p.at, i.customer_id, i.currency, l.unit_amount,
       (EXTRACT(YEAR FROM l.period_end AT TIME ZONE 'UTC') - EXTRACT(YEAR FROM l.period_start AT TIME ZONE 'UTC')) * 12
       + EXTRACT(MONTH FROM l.period_end AT TIME ZONE 'UTC') - EXTRACT(MONTH FROM l.period_start AT TIME ZONE 'UTC')
FROM unnest(%(instants)s::timestamptz[]) AS p(at)
JOIN payments_invoiceline l ON l.kind = 'subscription' AND l.period_start <= p.at AND l.period_end > p.at
JOIN payments_invoice i ON i.id = l.invoice_id AND i.status = ANY(%(statuses)s) AND i.subscription_id IS NOT NULL
JOIN subscriptions_subscription s ON s.id = i.subscription_id AND (s.ended_at IS NULL OR s.ended_at > p.at)
WHERE (%(currency)s::text IS NULL OR i.currency = %(currency)s::text)
ORDER BY p.at, i.subscription_id, l.period_start DESC, l.id DESC
"""

def mrr_by_customer(*, instants: list[datetime], currency: str | None) -> dict[datetime, dict[tuple[str, int], int]]:
    """{instant: {(currency, customer id): MRR in minor units}} for customers with a covering fee line."""
    exact: dict[datetime, dict[tuple[str, int], Decimal]] = {at: defaultdict(Decimal) for at in instants}
    for at, customer_id, row_currency, unit_amount, months in _covering_fee_lines(instants=instants,
                                                                                   currency=currency):
        exact[at][(row_currency, customer_id)] += Decimal(unit_amount) / Decimal(int(months) or 1)
    return {at: {key: round_minor(value) for key, value in rates.items()} for at, rates in exact.items()}


def _covering_fee_lines(*, instants: list[datetime], currency: str | None) -> list[tuple]:
    """(instant, customer, currency, unit amount, months) of each subscription's newest fee line covering
    each instant: one statement on PostgreSQL; the embedded default (SQLite, no arrays or DISTINCT ON)
    picks the lines in Python from those overlapping the instants."""
    if connection.vendor != "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(_RATES_SQL, {"instants": instants, "statuses": list(BILLED_INVOICE_STATUSES),
                                        "currency": currency})
            return cursor.fetchall()
    lines = (InvoiceLine.objects.filter(kind=InvoiceLineKind.SUBSCRIPTION, invoice__status__in=BILLED_INVOICE_STATUSES,
                                        invoice__subscription__isnull=False, period_start__lte=max(instants),
                                        period_end__gt=min(instants))
             .filter(**({"invoice__currency": currency} if currency else {}))
             .values_list("invoice__subscription_id", "invoice__subscription__ended_at", "invoice__customer_id",
                          "invoice__currency", "unit_amount", "period_start", "period_end", "id"))
    newest: dict[tuple[datetime, int], tuple] = {}
    for sub, ended, customer, row_currency, unit_amount, start, end, pk in lines:
        for at in instants:
            if start <= at < end and (ended is None or ended > at):
                months = (end.year - start.year) * 12 + end.month - start.month
                row = (start, pk, (at, customer, row_currency, unit_amount, months))
                newest[(at, sub)] = max(newest.get((at, sub), row), row, key=lambda r: r[:2])
    return [row[2] for row in newest.values()]


def _first_paid(customer_ids: set[int]) -> dict[int, datetime]:
    """When each customer's first paid plan fee period began: a customer back from zero MRR is reactivated
    when it had paid before, new otherwise. One grouped query."""
    if not customer_ids:
        return {}
    return dict(InvoiceLine.objects.filter(kind=InvoiceLineKind.SUBSCRIPTION, unit_amount__gt=0,
                                           invoice__status__in=BILLED_INVOICE_STATUSES,
                                           invoice__subscription__isnull=False,
                                           invoice__customer_id__in=array_of(customer_ids))
                .values_list("invoice__customer_id").annotate(first=Min("period_start")).order_by())


def _classify(before: int, after: int, *, paid_earlier: bool) -> str | None:
    if before == after:
        return None
    if before == 0:
        return "reactivated" if paid_earlier else "new"
    if after == 0:
        return "churned"
    return "expansion" if after > before else "contraction"


def report_mrr_reference(*, period: ReportRange) -> list[MrrPoint]:
    """MRR at the start and end of each month window of the period, per currency, and its movements."""
    windows = month_windows(start=period.start, end=period.end)
    instants = sorted({period.start, *(end for _, end in windows)})
    rates = mrr_by_customer(instants=instants, currency=period.currency)
    first_paid = _first_paid({customer for by_key in rates.values() for _, customer in by_key})
    currencies = sorted({c for by_key in rates.values() for c, _ in by_key}
                        | ({period.currency} if period.currency else set()))
    points = []
    for currency in currencies:
        for start, end in windows:
            point = MrrPoint(currency=currency, start=start, end=end)
            before = {k: v for k, v in rates[start].items() if k[0] == currency}
            after = {k: v for k, v in rates[end].items() if k[0] == currency}
            point.mrr_start, point.mrr_end = sum(before.values()), sum(after.values())
            point.customers_start = sum(1 for v in before.values() if v > 0)
            for key in before.keys() | after.keys():
                old, new = before.get(key, 0), after.get(key, 0)
                paid_earlier = key[1] in first_paid and first_paid[key[1]] < start
                movement = _classify(old, new, paid_earlier=paid_earlier)
                if movement:
                    point.movements[movement] += new - old
                point.customers_churned += movement == "churned"
            points.append(point)
    return points


def report_churn_reference(*, period: ReportRange) -> list[ChurnRow]:
    """Logo and revenue churn per month window, from the same MRR movements."""
    return [ChurnRow(currency=p.currency, start=p.start, end=p.end, customers_start=p.customers_start,
                     customers_churned=p.customers_churned,
                     logo_churn_rate=_rate(p.customers_churned, p.customers_start), mrr_start=p.mrr_start,
                     revenue_churn_rate=_rate(-(p.movements["churned"] + p.movements["contraction"]), p.mrr_start))
            for p in report_mrr_reference(period=period)]
