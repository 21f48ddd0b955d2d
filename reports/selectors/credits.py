"""Credits per month, from the append-only credit ledger: what came in (granted, purchased, refunded,
adjusted), what went out (used, expired), and what was outstanding at the end. Credits are units, not
money; the currency filter keeps the customers billed in that currency.

Whole UTC days are read from the ledger's day rollup (`credits.CreditLedgerDay`, kept in the transaction of
every ledger row); a range starting or ending inside a day reads that day's ledger rows by their
`created_at` index. The figures are those of the ledger rows themselves (docs/reports.md, "Definitions")."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import BooleanField, ExpressionWrapper, Q, Sum
from django.db.models.functions import Coalesce, TruncMonth

from credits.models import CreditLedgerDay, CreditLedgerEntry, CreditSource, LedgerKind
from credits.rollups import CREDIT_DAY_COLUMNS, day_start
from reports.selectors.periods import month_start, month_windows

_PURCHASE = Q(kind=LedgerKind.GRANT, grant__source=CreditSource.PURCHASE)
# Each column's ledger rows; together they are every row, so outstanding moves by exactly their sum.
CREDIT_COLUMNS = {
    "granted": Q(kind=LedgerKind.GRANT) & ~_PURCHASE,
    "purchased": _PURCHASE,
    "used": Q(kind=LedgerKind.DEBIT),
    "expired": Q(kind=LedgerKind.EXPIRY),
    "refunded": Q(kind=LedgerKind.REFUND),
    "adjusted": Q(kind=LedgerKind.ADJUSTMENT),
}
assert tuple(CREDIT_COLUMNS) == CREDIT_DAY_COLUMNS
# Shown as positive figures though their ledger rows subtract.
_OUTFLOWS = {"used", "expired"}
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class CreditMonth:
    start: datetime
    end: datetime
    granted: int
    purchased: int
    used: int
    expired: int
    refunded: int
    adjusted: int
    # The sum of every customer's balance at `end`.
    outstanding: int


def report_credits(*, period_start: datetime, period_end: datetime, currency: str | None) -> list[CreditMonth]:
    """Per month window of [period_start, period_end). Two queries: the rollup's whole days, the ledger rows
    of the partial first and last days."""
    opening, monthly = _sums(period_start=period_start, period_end=period_end, currency=currency)
    outstanding, months = opening, []
    for start, end in month_windows(start=period_start, end=period_end):
        figures = dict(zip(CREDIT_DAY_COLUMNS, monthly.get(month_start(start), [0] * 6), strict=True))
        outstanding += sum(figures.values())
        months.append(CreditMonth(start=start, end=end, outstanding=outstanding,
                                  **{n: -v if n in _OUTFLOWS else v for n, v in figures.items()}))
    return months


def _sums(*, period_start: datetime, period_end: datetime, currency: str | None) -> tuple[int, dict]:
    """(outstanding at period_start, {UTC month start: signed column sums inside [period_start, period_end)})."""
    first_day = day_start(period_start)
    # The first whole day of the range, and the start of the day holding its end.
    whole_from = period_start if period_start == first_day else first_day + _DAY
    whole_to = day_start(period_end)
    days = (CreditLedgerDay.objects.filter(Q(day__lt=first_day) | Q(day__gte=whole_from, day__lt=whole_to))
            .filter(**({"currency": currency} if currency else {}))
            .values(month=TruncMonth("day", tzinfo=UTC),
                    opening=ExpressionWrapper(Q(day__lt=first_day), output_field=BooleanField()))
            .annotate(**{f"c_{name}": Coalesce(Sum(name), 0) for name in CREDIT_DAY_COLUMNS}).order_by())
    partial = Q(created_at__gte=first_day, created_at__lt=min(whole_from, period_end))
    if period_end > whole_to >= whole_from:
        partial |= Q(created_at__gte=whole_to, created_at__lt=period_end)
    entries = (CreditLedgerEntry.objects.filter(partial & (Q(customer__currency=currency) if currency else Q()))
               .values(month=TruncMonth("created_at", tzinfo=UTC),
                       opening=ExpressionWrapper(Q(created_at__lt=period_start), output_field=BooleanField()))
               .annotate(**{f"c_{name}": Coalesce(Sum("amount", filter=q), 0) for name, q in CREDIT_COLUMNS.items()})
               .order_by())
    opening, monthly = 0, {}
    for row in [*days, *(entries if period_start != first_day or period_end != whole_to else [])]:
        figures = [row[f"c_{name}"] for name in CREDIT_DAY_COLUMNS]
        if row["opening"]:
            opening += sum(figures)
        else:
            month = monthly.setdefault(row["month"], [0] * len(figures))
            monthly[row["month"]] = [a + b for a, b in zip(month, figures, strict=True)]
    return opening, monthly
