"""MRR and churn, derived from the invoices.

A customer's MRR at an instant is what its subscriptions' period fees come to per month: for each
subscription not ended by then, the plan fee line (`kind=subscription`) of an issued, not voided invoice
whose period covers the instant (the newest when several do), divided by the calendar months of that
period, summed per customer and rounded once, half-up, to the minor unit. Trials, free plans and
paused subscriptions past the period they paid for count nothing. A plan change is seen from the
renewal that bills the new plan: its proration is one-off revenue (see the revenue report).

Between two instants every customer's change falls in exactly one movement (new, expansion,
contraction, churned, reactivated), so the movements add up to the change in MRR, in integers."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from reports.selectors.mrr_changes import InstantChange, PartialFigures, mrr_partial_figures
from reports.selectors.periods import ReportRange, month_start, month_windows
from subscriptions.models import MrrMonth
from subscriptions.mrr_rollups import MOVEMENTS
from subscriptions.periods import add_months


@dataclass
class MrrPoint:
    currency: str
    # The window [start, end): MRR at its start, at its end, and the movements between.
    start: datetime
    end: datetime
    mrr_start: int = 0
    mrr_end: int = 0
    movements: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOVEMENTS, 0))
    # Customers: paying at the start, and those of them paying nothing at the end.
    customers_start: int = 0
    customers_churned: int = 0


def _is_whole_month(start: datetime, end: datetime) -> bool:
    return start == month_start(start) and end == add_months(start, 1)


def report_mrr(*, period: ReportRange) -> list[MrrPoint]:
    """MRR at the start and end of each month window of the period, per currency, and its movements.
    One query when every window is a whole month; a first or last window starting or ending inside a month
    adds one statement over the customers' MRR change points of those days (reports.selectors.mrr_changes)."""
    windows = month_windows(start=period.start, end=period.end)
    whole = [w for w in windows if _is_whole_month(*w)]
    partial = [w for w in windows if w not in whole]
    inner = sorted({at for window in partial for at in window if at != month_start(at)})
    whole_months = {at for window in whole for at in window}
    rollup = {(row.currency, row.month): row for row in MrrMonth.objects.filter(
        month__in=sorted(whole_months | {month_start(at) for window in partial for at in window}),
        **({"currency": period.currency} if period.currency else {}))}
    changes = mrr_partial_figures(instants=[(month_start(at), at) for at in inner], windows=partial,
                                  currency=period.currency)
    # A currency shows once a fee line (even of 0) covers one of its customers at a window's start or end.
    covered = {c for (c, month), row in rollup.items() if month in whole_months and row.customers_covered > 0}
    covered |= {c for c in {c for c, _ in rollup} | {c for _, c in changes.instants}
                for window in partial for at in window if _figures_at(rollup, changes, currency=c, at=at).covered > 0}
    points = []
    for currency in sorted(covered | ({period.currency} if period.currency else set())):
        for start, end in windows:
            point = MrrPoint(currency=currency, start=start, end=end)
            if (start, end) in whole:
                _point_from_rollup(point, at_start=rollup.get((currency, start)), at_end=rollup.get((currency, end)))
            else:
                _point_from_changes(point, rollup=rollup, changes=changes)
            points.append(point)
    return points


def _point_from_rollup(point: MrrPoint, *, at_start: MrrMonth | None, at_end: MrrMonth | None) -> None:
    point.mrr_end = at_end.mrr if at_end else 0
    if at_start:
        point.mrr_start, point.customers_start = at_start.mrr, at_start.customers_paying
        point.customers_churned = at_start.customers_churned
        point.movements = {name: getattr(at_start, name) for name in MOVEMENTS}


def _figures_at(rollup: dict, changes: PartialFigures, *, currency: str, at: datetime) -> InstantChange:
    """A currency's MRR, customers paying and customers covered at any instant: its month start's rollup
    plus the changes since."""
    month = rollup.get((currency, month_start(at)))
    since = changes.instants.get((at, currency), InstantChange())
    if month is None:
        return since
    return InstantChange(mrr=month.mrr + since.mrr, paying=month.customers_paying + since.paying,
                         covered=month.customers_covered + since.covered)


def _point_from_changes(point: MrrPoint, *, rollup: dict, changes: PartialFigures) -> None:
    at_start = _figures_at(rollup, changes, currency=point.currency, at=point.start)
    point.mrr_start, point.customers_start = at_start.mrr, at_start.paying
    point.mrr_end = _figures_at(rollup, changes, currency=point.currency, at=point.end).mrr
    moved = changes.windows.get((point.start, point.end, point.currency))
    if moved:
        point.movements, point.customers_churned = dict(moved.movements), moved.customers_churned


RATE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class ChurnRow:
    currency: str
    start: datetime
    end: datetime
    customers_start: int
    customers_churned: int
    # Share of the customers paying at the start who pay nothing at the end (None without any).
    logo_churn_rate: Decimal | None
    mrr_start: int
    # MRR lost to churn and contraction, as a share of the MRR at the start (None without any).
    revenue_churn_rate: Decimal | None


def _rate(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP) if whole else None


def report_churn(*, period: ReportRange) -> list[ChurnRow]:
    """Logo and revenue churn per month window, from the same MRR movements."""
    return [ChurnRow(currency=p.currency, start=p.start, end=p.end, customers_start=p.customers_start,
                     customers_churned=p.customers_churned,
                     logo_churn_rate=_rate(p.customers_churned, p.customers_start), mrr_start=p.mrr_start,
                     revenue_churn_rate=_rate(-(p.movements["churned"] + p.movements["contraction"]), p.mrr_start))
            for p in report_mrr(period=period)]
