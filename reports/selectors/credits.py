"""Credits per month, from the append-only credit ledger: what came in (granted, purchased, refunded,
adjusted), what went out (used, expired), and what was outstanding at the end. Credits are units, not
money; the currency filter keeps the customers billed in that currency."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce, TruncMonth

from credits.models import CreditLedgerEntry, CreditSource, LedgerKind
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
# Shown as positive figures though their ledger rows subtract.
_OUTFLOWS = {"used", "expired"}


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
    """Per month window of [period_start, period_end). Two queries."""
    entries = CreditLedgerEntry.objects.filter(Q(customer__currency=currency) if currency else Q())
    opening = entries.filter(created_at__lt=period_start).aggregate(total=Coalesce(Sum("amount"), 0))["total"]
    sums = {f"c_{name}": Coalesce(Sum("amount", filter=q), 0) for name, q in CREDIT_COLUMNS.items()}
    monthly = {row["month"]: row for row in
               entries.filter(created_at__gte=period_start, created_at__lt=period_end)
               .annotate(month=TruncMonth("created_at", tzinfo=UTC)).values("month").annotate(**sums).order_by()}
    outstanding, months = opening, []
    for start, end in month_windows(start=period_start, end=period_end):
        row = monthly.get(month_start(start), {})
        figures = {name: row.get(f"c_{name}", 0) for name in CREDIT_COLUMNS}
        outstanding += sum(figures.values())
        months.append(CreditMonth(start=start, end=end, outstanding=outstanding,
                                  **{n: -v if n in _OUTFLOWS else v for n, v in figures.items()}))
    return months
