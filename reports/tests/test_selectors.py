"""Every report recomputed independently by plain SQL over random seeded histories, and compared."""

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from reports.selectors import (
    MOVEMENTS,
    ReportRange,
    report_churn,
    report_credits,
    report_mrr,
    report_payment_summary,
    report_receivables,
    report_revenue,
    report_subscriptions,
)
from reports.tests.history import HISTORY_END, HISTORY_START, history_build

SEEDS = [3, 17, 2026]
# Not aligned to months, to exercise partial first and last windows.
RANGE = ReportRange(start=datetime(2025, 2, 10, 6, tzinfo=UTC), end=datetime(2026, 5, 20, tzinfo=UTC))


def sql(query: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params or {})
        return cursor.fetchall()


def _params(period: ReportRange = RANGE) -> dict:
    return {"start": period.start, "end": period.end}


@pytest.fixture(params=SEEDS)
def history(request, db):
    return history_build(seed=request.param)


def test_payment_summary_matches_sql(history):
    expected = {(c, m, s): (n, int(a), int(r)) for c, m, s, n, a, r in sql(
        """SELECT currency, method, status, COUNT(*), SUM(amount), SUM(amount_refunded) FROM payments_payment
           WHERE created_at >= %(start)s AND created_at < %(end)s GROUP BY 1, 2, 3""", _params())}
    rows = report_payment_summary(period=RANGE)
    got = {(r.currency, r.method, r.status): (r.count, r.amount, r.amount_refunded) for r in rows if r.count}
    assert got == expected and expected
    currencies = {c for c, _, _ in expected}
    assert len(rows) == len(currencies) * 6 * 7  # every method x status, zeros included


_MONTH = "to_char(date_trunc('month', {0} AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
_REVENUE_SQL = {
    "invoiced": """SELECT i.currency, {invoice_key}, SUM(i.total) FROM payments_invoice i
                   LEFT JOIN subscriptions_subscription s ON s.id = i.subscription_id
                   LEFT JOIN subscriptions_plan p ON p.id = s.plan_id
                   WHERE i.status IN ('open', 'paid', 'uncollectible') AND i.issued_at >= %(start)s
                     AND i.issued_at < %(end)s GROUP BY 1, 2""",
    "written_off": """SELECT i.currency, {invoice_key}, SUM(i.amount_due) FROM payments_invoice i
                   LEFT JOIN subscriptions_subscription s ON s.id = i.subscription_id
                   LEFT JOIN subscriptions_plan p ON p.id = s.plan_id
                   WHERE i.status = 'uncollectible' AND i.issued_at >= %(start)s AND i.issued_at < %(end)s
                   GROUP BY 1, 2""",
    "collected": """SELECT y.currency, {payment_key}, SUM(y.amount) FROM payments_payment y
                   LEFT JOIN payments_invoice i ON i.id = y.invoice_id
                   LEFT JOIN subscriptions_subscription s ON s.id = i.subscription_id
                   LEFT JOIN subscriptions_plan p ON p.id = s.plan_id
                   WHERE y.status IN ('succeeded', 'partially_refunded', 'refunded')
                     AND y.succeeded_at >= %(start)s AND y.succeeded_at < %(end)s GROUP BY 1, 2""",
    "refunded": """SELECT r.currency, {refund_key}, SUM(r.amount) FROM payments_refund r
                   JOIN payments_payment y ON y.id = r.payment_id
                   LEFT JOIN payments_invoice i ON i.id = y.invoice_id
                   LEFT JOIN subscriptions_subscription s ON s.id = i.subscription_id
                   LEFT JOIN subscriptions_plan p ON p.id = s.plan_id
                   WHERE r.status = 'succeeded' AND r.created_at >= %(start)s AND r.created_at < %(end)s
                   GROUP BY 1, 2""",
}
_REVENUE_KEYS = {
    "month": {"invoice_key": _MONTH.format("i.issued_at"), "payment_key": _MONTH.format("y.succeeded_at"),
              "refund_key": _MONTH.format("r.created_at")},
    "plan": {"invoice_key": "p.code", "payment_key": "p.code", "refund_key": "p.code"},
    "method": {"invoice_key": "NULL", "payment_key": "y.method", "refund_key": "y.method"},
}


@pytest.mark.parametrize("group_by", ["month", "plan", "method"])
def test_revenue_matches_sql(history, group_by):
    expected = defaultdict(lambda: dict.fromkeys(_REVENUE_SQL, 0))
    for figure, query in _REVENUE_SQL.items():
        for currency, key, amount in sql(query.format(**_REVENUE_KEYS[group_by]), _params()):
            expected[(currency, key)][figure] = int(amount)
    rows = report_revenue(period=RANGE, group_by=group_by)
    got = {(r.currency, r.key): {"invoiced": r.invoiced, "written_off": r.written_off, "collected": r.collected,
                                 "refunded": r.refunded} for r in rows}
    assert got == dict(expected) and got
    assert all(r.net == r.collected - r.refunded for r in rows)


# Per instant and customer: each live subscription's newest covering plan fee line, per month of its period,
# summed and rounded half-up (PostgreSQL's round() on numeric rounds half away from zero; rates are >= 0).
_MRR_SQL = """
WITH instants AS (SELECT unnest(%(instants)s::timestamptz[]) AS at),
fee AS (
  SELECT x.at, i.customer_id, i.currency,
         (SELECT l.unit_amount / GREATEST(1, (date_part('year', l.period_end AT TIME ZONE 'UTC') * 12
                 + date_part('month', l.period_end AT TIME ZONE 'UTC'))
                 - (date_part('year', l.period_start AT TIME ZONE 'UTC') * 12
                 + date_part('month', l.period_start AT TIME ZONE 'UTC')))::numeric
          FROM payments_invoiceline l JOIN payments_invoice i2 ON i2.id = l.invoice_id
          WHERE i2.subscription_id = s.id AND l.kind = 'subscription' AND i2.status <> 'void' AND i2.status <> 'draft'
            AND l.period_start <= x.at AND x.at < l.period_end
          ORDER BY l.period_start DESC, l.id DESC LIMIT 1) AS rate
  FROM instants x CROSS JOIN subscriptions_subscription s
  JOIN payments_invoice i ON i.id = (SELECT MIN(id) FROM payments_invoice WHERE subscription_id = s.id)
  WHERE s.ended_at IS NULL OR s.ended_at > x.at
)
SELECT at, currency, customer_id, round(SUM(rate))::bigint FROM fee WHERE rate IS NOT NULL
GROUP BY at, currency, customer_id
"""


def _sql_mrr(instants: list[datetime]) -> dict[datetime, dict[tuple[str, int], int]]:
    rates = {at: {} for at in instants}
    for at, currency, customer, rate in sql(_MRR_SQL, {"instants": instants}):
        rates[at][(currency, customer)] = rate
    return rates


def _sql_first_paid() -> dict[int, datetime]:
    return dict(sql("""SELECT i.customer_id, MIN(l.period_start) FROM payments_invoiceline l
                       JOIN payments_invoice i ON i.id = l.invoice_id
                       WHERE l.kind = 'subscription' AND l.unit_amount > 0 AND i.status NOT IN ('void', 'draft')
                       GROUP BY 1"""))


def test_mrr_matches_sql_and_movements_add_up_to_the_change(history):
    points = report_mrr(period=RANGE)
    instants = sorted({RANGE.start, *(p.end for p in points)})
    rates, first_paid = _sql_mrr(instants), _sql_first_paid()
    assert points and any(p.mrr_end for p in points)
    for point in points:
        before = {k: v for k, v in rates[point.start].items() if k[0] == point.currency}
        after = {k: v for k, v in rates[point.end].items() if k[0] == point.currency}
        assert (point.mrr_start, point.mrr_end) == (sum(before.values()), sum(after.values()))
        expected = dict.fromkeys(MOVEMENTS, 0)
        for key in before.keys() | after.keys():
            old, new = before.get(key, 0), after.get(key, 0)
            if old == new:
                continue
            if old == 0:
                earlier = key[1] in first_paid and first_paid[key[1]] < point.start
                expected["reactivated" if earlier else "new"] += new
            elif new == 0:
                expected["churned"] -= old
            else:
                expected["expansion" if new > old else "contraction"] += new - old
        assert point.movements == expected
        assert sum(point.movements.values()) == point.mrr_end - point.mrr_start


def test_mrr_windows_chain_and_cover_the_range(history):
    points = report_mrr(period=RANGE)
    for currency in {p.currency for p in points}:
        mine = [p for p in points if p.currency == currency]
        assert mine[0].start == RANGE.start and mine[-1].end == RANGE.end
        assert all(a.end == b.start and a.mrr_end == b.mrr_start for a, b in zip(mine, mine[1:], strict=False))


def test_churn_rates_are_the_mrr_movements_over_the_start(history):
    rows = report_churn(period=RANGE)
    points = {(p.currency, p.start): p for p in report_mrr(period=RANGE)}
    assert rows
    for row in rows:
        point = points[(row.currency, row.start)]
        paying_before = point.customers_start
        assert row.customers_start == paying_before
        if paying_before:
            assert row.logo_churn_rate == (Decimal(row.customers_churned) / paying_before).quantize(Decimal("0.0001"))
            lost = -(point.movements["churned"] + point.movements["contraction"])
            assert row.revenue_churn_rate == (Decimal(lost) / point.mrr_start).quantize(Decimal("0.0001"))
        else:
            assert row.logo_churn_rate is None


def test_churned_customers_are_those_paying_at_the_start_and_not_at_the_end(history):
    rows = report_churn(period=RANGE)
    instants = sorted({RANGE.start, *(r.end for r in rows)})
    rates = _sql_mrr(instants)
    for row in rows:
        before = {k for k, v in rates[row.start].items() if k[0] == row.currency and v > 0}
        after = {k for k, v in rates[row.end].items() if k[0] == row.currency and v > 0}
        assert row.customers_churned == len(before - after)


_SUBSCRIPTIONS_SQL = """
WITH state AS (
  SELECT s.id, s.plan_id,
         (SELECT e.to_status FROM subscriptions_subscriptionevent e WHERE e.subscription_id = s.id
            AND e.created_at <= %(at)s AND e.to_status <> '' ORDER BY e.created_at DESC, e.id DESC LIMIT 1) AS status,
         (SELECT e.from_plan_id FROM subscriptions_subscriptionevent e WHERE e.subscription_id = s.id
            AND e.created_at > %(at)s AND e.kind = 'plan_changed' ORDER BY e.created_at, e.id LIMIT 1) AS later
  FROM subscriptions_subscription s)
SELECT st.status, p.code, COUNT(*) FROM state st JOIN subscriptions_plan p ON p.id = COALESCE(st.later, st.plan_id)
WHERE st.status IS NOT NULL GROUP BY 1, 2
"""


@pytest.mark.parametrize("at", [datetime(2025, 6, 1, tzinfo=UTC), datetime(2026, 3, 15, 12, tzinfo=UTC)])
def test_subscription_counts_at_a_date_match_sql(history, at):
    rows = sql(_SUBSCRIPTIONS_SQL, {"at": at})
    counts = report_subscriptions(at=at, currency=None)
    by_status, by_plan = defaultdict(int), defaultdict(int)
    for status, plan, n in rows:
        by_status[status] += n
        if status != "canceled":
            by_plan[plan] += n
    assert {k: v for k, v in counts.by_status.items() if v} == dict(by_status) and rows
    assert {p.plan: p.count for p in counts.by_plan} == dict(by_plan)


def test_receivables_match_sql(history):
    expected = defaultdict(lambda: [0, 0])
    for currency, days, due in sql(
            """SELECT currency, floor(extract(epoch FROM (%(end)s - due_date)) / 86400), amount_due
               FROM payments_invoice WHERE status = 'open' AND issued_at < %(end)s""", _params()):
        bucket = ("current" if days is None or days < 1 else "1-30" if days <= 30 else "31-60" if days <= 60
                  else "61-90" if days <= 90 else "over_90")
        expected[(currency, bucket)][0] += 1
        expected[(currency, bucket)][1] += due
    rows = report_receivables(period=RANGE)
    assert {(r.currency, r.bucket): [r.count, r.amount_due] for r in rows if r.count} == dict(expected)
    assert expected


def test_credits_per_month_match_sql(history):
    rows = report_credits(period_start=RANGE.start, period_end=RANGE.end, currency=None)
    opening = sql("SELECT COALESCE(SUM(amount), 0) FROM credits_creditledgerentry WHERE created_at < %(start)s",
                  _params())[0][0]
    monthly = {month: figures for month, *figures in sql(
        """SELECT date_trunc('month', e.created_at AT TIME ZONE 'UTC'),
                  SUM(e.amount) FILTER (WHERE e.kind = 'grant' AND g.source <> 'purchase'),
                  SUM(e.amount) FILTER (WHERE e.kind = 'grant' AND g.source = 'purchase'),
                  -SUM(e.amount) FILTER (WHERE e.kind = 'debit'), -SUM(e.amount) FILTER (WHERE e.kind = 'expiry'),
                  SUM(e.amount) FILTER (WHERE e.kind = 'refund')
           FROM credits_creditledgerentry e LEFT JOIN credits_creditgrant g ON g.id = e.grant_id
           WHERE e.created_at >= %(start)s AND e.created_at < %(end)s GROUP BY 1""", _params())}
    outstanding = opening
    assert rows and monthly
    for row in rows:
        figures = [v or 0 for v in monthly.get(row.start.replace(day=1, hour=0, tzinfo=None), [0] * 5)]
        assert [row.granted, row.purchased, row.used, row.expired, row.refunded] == figures
        outstanding += figures[0] + figures[1] - figures[2] - figures[3] + figures[4]
        assert row.outstanding == outstanding
    assert rows[-1].outstanding == sql("SELECT SUM(amount) FROM credits_creditledgerentry WHERE created_at < %(end)s",
                                       _params())[0][0]


def test_a_currency_keeps_only_its_rows(history):
    euro = ReportRange(start=HISTORY_START, end=HISTORY_END, currency="EUR")
    assert {r.currency for r in report_payment_summary(period=euro)} == {"EUR"}
    assert {r.currency for r in report_revenue(period=euro, group_by="plan")} <= {"EUR"}
    assert {p.currency for p in report_mrr(period=euro)} == {"EUR"}
    assert {p.currency for p in report_subscriptions(at=HISTORY_END, currency="EUR").by_plan} <= {"EUR"}


def test_the_embedded_default_path_gives_the_same_mrr(history, monkeypatch):
    expected = report_mrr(period=RANGE)
    monkeypatch.setattr(connection, "vendor", "sqlite")  # the SQLite seam, run on the same rows
    assert report_mrr(period=RANGE) == expected and expected
