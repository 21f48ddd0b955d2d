"""MRR at instants inside a month, and the movements of windows that start or end inside one, from the
customers' MRR change points (`subscriptions.CustomerMrrChange`).

A customer's MRR is constant between its change points and each row holds the value just before and from
its instant on (a fee line covers [start, end), so a change at t already counts at t). Hence:
- a currency's MRR at t = `MrrMonth` at the month start m <= t plus the sum of (after - before) of the
  changes in (m, t]; the customers paying or covered likewise, with (after > 0) - (before > 0) per row (a
  customer's rows chain, so the sum telescopes to its first `before` and last `after`);
- over a window [a, b) only customers with a change in (a, b] move: from the `before` of their first one
  (their MRR at a) to the `after` of their last one (their MRR at b).
One statement answers every inner instant and partial window of a report, in the database."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from subscriptions.models import CustomerFirstFee, CustomerMrrChange
from subscriptions.mrr_rollups import MOVEMENTS

_PAYING = "(CASE WHEN mrr_after > 0 THEN 1 ELSE 0 END) - (CASE WHEN mrr_before > 0 THEN 1 ELSE 0 END)"
_COVERED = "(CASE WHEN covered_after THEN 1 ELSE 0 END) - (CASE WHEN covered_before THEN 1 ELSE 0 END)"

# Part 0: the change in (MRR, paying, covered) over (month start, instant], per currency.
_INSTANT_SQL = f"""
SELECT 0, {{index}}, currency, SUM(mrr_after - mrr_before), SUM({_PAYING}), SUM({_COVERED}), 0, 0, 0, 0, 0, 0
FROM {{changes}} WHERE changed_at > %s AND changed_at <= %s {{currency}} GROUP BY currency"""

# Part 1: the movements of the window [a, b), per currency, from each moving customer's rows in (a, b]. A
# customer's rows chain (one's after is the next one's before), so over them SUM(before - after) is
# d = start - end and SUM((before <> 0) - (after <> 0)) is p = (start <> 0) - (end <> 0), and those two
# decide its movement without finding its first and last row (no sort, no window function): p = -1 is from
# 0 (new, or reactivated when its first paid fee period began before a), p = 1 is to 0 (churned), p = 0 with
# d <> 0 is up or down; each moves MRR by -d. The CASEs are `subscriptions.mrr_rollups.
# mrr_movement_classify`'s. First fees are looked up only for customers from 0. The same rows also give
# part 0's figures for the instant b when b's month starts at a (a report's last partial window), so those
# rows are read once.
_FROM_ZERO = "g.p = -1"
_REACTIVATED = (f"{_FROM_ZERO} AND EXISTS (SELECT 1 FROM {{first_fees}} f WHERE f.customer_id = g.customer_id"
                " AND f.first_paid_at < %s)")
_WINDOW_SQL = f"""
SELECT 1, {{index}}, g.currency, SUM(-g.d), SUM(g.paying), SUM(g.covered),
  SUM(CASE WHEN {_FROM_ZERO} THEN -g.d ELSE 0 END) - SUM(CASE WHEN {_REACTIVATED} THEN -g.d ELSE 0 END),
  SUM(CASE WHEN g.p = 0 AND g.d < 0 THEN -g.d ELSE 0 END),
  SUM(CASE WHEN g.p = 0 AND g.d > 0 THEN -g.d ELSE 0 END),
  SUM(CASE WHEN g.p = 1 THEN -g.d ELSE 0 END),
  SUM(CASE WHEN {_REACTIVATED} THEN -g.d ELSE 0 END),
  SUM(CASE WHEN g.p = 1 THEN 1 ELSE 0 END)
FROM (SELECT customer_id, currency, CAST(SUM(mrr_before - mrr_after) AS BIGINT) AS d,
             SUM((CASE WHEN mrr_before <> 0 THEN 1 ELSE 0 END) - (CASE WHEN mrr_after <> 0 THEN 1 ELSE 0 END)) AS p,
             SUM({_PAYING}) AS paying, SUM({_COVERED}) AS covered
      FROM {{changes}} WHERE changed_at > %s AND changed_at <= %s {{currency}}
      GROUP BY customer_id, currency) AS g
WHERE g.d <> 0 OR g.paying <> 0 OR g.covered <> 0
GROUP BY g.currency"""


@dataclass
class InstantChange:
    """A currency's change from the month start to an instant inside the month."""

    mrr: int = 0
    paying: int = 0
    covered: int = 0


@dataclass
class WindowMovements:
    movements: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOVEMENTS, 0))
    customers_churned: int = 0


@dataclass
class PartialFigures:
    # {(instant, currency): change since the instant's month start}
    instants: dict[tuple[datetime, str], InstantChange] = field(default_factory=dict)
    # {(window start, window end, currency): movements}
    windows: dict[tuple[datetime, datetime, str], WindowMovements] = field(default_factory=dict)


def mrr_partial_figures(*, instants: list[tuple[datetime, datetime]], windows: list[tuple[datetime, datetime]],
                        currency: str | None) -> PartialFigures:
    """For each (month start, instant) the change of each currency's figures over (month start, instant],
    and for each window [a, b) its movements: one statement, whatever the number of customers."""
    figures = PartialFigures()
    if not instants and not windows:
        return figures
    adapt = connection.ops.adapt_datetimefield_value
    names = {"changes": CustomerMrrChange._meta.db_table, "first_fees": CustomerFirstFee._meta.db_table,
             "currency": "AND currency = %s" if currency else ""}
    parts, params = [], []
    # An instant whose (month start, instant] is a window's (a, b] comes with that window's row.
    merged = set(windows) & set(instants)
    for index, (month, at) in enumerate(instants):
        if (month, at) not in merged:
            parts.append(_INSTANT_SQL.format(index=index, **names))
            params += [adapt(month), adapt(at), *([currency] if currency else [])]
    for index, (start, end) in enumerate(windows):
        parts.append(_WINDOW_SQL.format(index=index, **names))
        params += [adapt(start), adapt(start), adapt(start), adapt(end), *([currency] if currency else [])]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()
    for part, index, row_currency, mrr, paying, covered, *movements, churned in rows:
        window = windows[index] if part == 1 else None
        if part == 0 or window in merged:
            at = instants[index][1] if part == 0 else window[1]
            figures.instants[(at, row_currency)] = InstantChange(mrr=int(mrr), paying=int(paying),
                                                                 covered=int(covered))
        if part == 1:
            # The SQL's columns are new, expansion, contraction, churned, reactivated: MOVEMENTS' order.
            figures.windows[(*window, row_currency)] = WindowMovements(
                movements=dict(zip(MOVEMENTS, (int(m) for m in movements), strict=True)),
                customers_churned=int(churned))
    return figures
