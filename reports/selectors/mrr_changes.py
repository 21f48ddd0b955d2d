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

# Part 1: the movements of the window [a, b), per currency, from each moving customer's first and last
# change in (a, b] (one sort: the last row is the one numbered as many as the customer has); a customer
# from 0 is reactivated when its first paid fee period began before a. The CASE order is
# `subscriptions.mrr_rollups.mrr_movement_classify`'s.
_MOVED = "c.mrr_start <> c.mrr_end AND c.mrr_start <> 0"
_WINDOW_SQL = f"""
SELECT 1, {{index}}, c.currency, 0, 0, 0,
  SUM(CASE WHEN c.mrr_start <> c.mrr_end AND c.mrr_start = 0
           AND (f.first_paid_at IS NULL OR f.first_paid_at >= %s) THEN c.mrr_end ELSE 0 END),
  SUM(CASE WHEN {_MOVED} AND c.mrr_end <> 0 AND c.mrr_end > c.mrr_start THEN c.mrr_end - c.mrr_start ELSE 0 END),
  SUM(CASE WHEN {_MOVED} AND c.mrr_end <> 0 AND c.mrr_end < c.mrr_start THEN c.mrr_end - c.mrr_start ELSE 0 END),
  SUM(CASE WHEN {_MOVED} AND c.mrr_end = 0 THEN -c.mrr_start ELSE 0 END),
  SUM(CASE WHEN c.mrr_start <> c.mrr_end AND c.mrr_start = 0
           AND f.first_paid_at < %s THEN c.mrr_end ELSE 0 END),
  SUM(CASE WHEN {_MOVED} AND c.mrr_end = 0 THEN 1 ELSE 0 END)
FROM (SELECT customer_id, currency, MAX(CASE WHEN first_n = 1 THEN mrr_before END) AS mrr_start,
             MAX(CASE WHEN first_n = rows_n THEN mrr_after END) AS mrr_end
      FROM (SELECT customer_id, currency, mrr_before, mrr_after,
                   ROW_NUMBER() OVER (PARTITION BY customer_id, currency ORDER BY changed_at) AS first_n,
                   COUNT(*) OVER (PARTITION BY customer_id, currency) AS rows_n
            FROM {{changes}} WHERE changed_at > %s AND changed_at <= %s {{currency}}) AS w
      GROUP BY customer_id, currency) AS c
LEFT JOIN {{first_fees}} f ON f.customer_id = c.customer_id
GROUP BY c.currency"""


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
    for index, (month, at) in enumerate(instants):
        parts.append(_INSTANT_SQL.format(index=index, **names))
        params += [adapt(month), adapt(at), *([currency] if currency else [])]
    for index, (start, end) in enumerate(windows):
        parts.append(_WINDOW_SQL.format(index=index, **names))
        params += [adapt(start), adapt(start), adapt(start), adapt(end), *([currency] if currency else [])]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()
    for part, index, row_currency, mrr, paying, covered, *movements, churned in rows:
        if part == 0:
            month, at = instants[index]
            figures.instants[(at, row_currency)] = InstantChange(mrr=int(mrr), paying=int(paying),
                                                                 covered=int(covered))
        else:
            start, end = windows[index]
            # The SQL's columns are new, expansion, contraction, churned, reactivated: MOVEMENTS' order.
            figures.windows[(start, end, row_currency)] = WindowMovements(
                movements=dict(zip(MOVEMENTS, (int(m) for m in movements), strict=True)),
                customers_churned=int(churned))
    return figures
