"""Finance reports over a year of a 100,000-customer business: p95 of every report for a one-year range,
beside a plain count(*) over the same rows in the same run.

    .venv/bin/python bench/reports_speed.py [--customers 100000] [--runs 7] [--database billing_bench_reports]

It recreates its own database, migrates it, creates the customers (ORM, batched), writes a year of
history with COPY (core.bulk) and backfills the report rollups from it (as `billing rollups-rebuild`
does): subscriptions on monthly and yearly plans in two currencies, one invoice
and plan-fee line per period (about 1.2 million of each for 100,000 customers), a payment per paid
invoice on every method, failed attempts, cancellations with their audit rows, and a credit ledger
row per invoice. Then each report's selector (what the API endpoint calls) runs `--runs` times.
`--reuse` times the database seeded before; with `--rebuild GROUP` it first migrates it and rebuilds those
rollup groups (mrr, money, credits, subscriptions), as an operator does after an upgrade.
"""

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = "postgres://postgres@127.0.0.1:5432"
YEAR_START = datetime(2025, 7, 1, tzinfo=UTC)
YEAR_END = datetime(2026, 7, 1, tzinfo=UTC)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database", default="billing_bench_reports")
    parser.add_argument("--reuse", action="store_true", help="time the reports on the database seeded before")
    parser.add_argument("--only", help="time only the reports whose name contains this")
    parser.add_argument("--rebuild", action="append", metavar="GROUP",
                        help="with --reuse: migrate, then rebuild these rollup groups (repeatable) before timing, "
                             "as an operator does after an upgrade that adds a rollup")
    return parser.parse_args()


def prepare(database: str, *, reuse: bool, migrate: bool = False) -> None:
    import psycopg

    os.environ.update({"DATABASE_URL": f"{PG}/{database}", "DATABASE_POOL_MAX_SIZE": "0", "LOG_LEVEL": "WARNING"})
    if not reuse:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')
    if not reuse or migrate:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    import django

    django.setup()


def _plans():
    from subscriptions.models import BillingInterval, Plan

    specs = [("monthly", 1000, "USD", BillingInterval.MONTH), ("pro", 2500, "USD", BillingInterval.MONTH),
             ("yearly", 25000, "USD", BillingInterval.YEAR), ("eu", 900, "EUR", BillingInterval.MONTH)]
    return [Plan.objects.create(code=c, name=c, amount=a, currency=cur, interval=i) for c, a, cur, i in specs]


def _customers(count: int, rng: random.Random) -> list:
    from subscriptions.models import Customer

    made = []
    for start in range(0, count, 5000):
        made += Customer.objects.bulk_create([
            Customer(name=f"c{n}", email=f"c{n}@example.com", currency=rng.choice(["USD", "USD", "USD", "EUR"]))
            for n in range(start, min(start + 5000, count))])
    return made


class History:
    """Rows per table, ids assigned here (reserved from each table's sequence)."""

    def __init__(self):
        from payments.models import MANUAL_PAYMENT_METHODS, MANUAL_PROVIDER, PaymentMethod

        self.rows = {name: [] for name in ("subs", "events", "invoices", "lines", "payments", "ledger")}
        # Every payment method with the rail that holds its ids (manual methods: the manual rail).
        self.methods = [(method, MANUAL_PROVIDER if method in MANUAL_PAYMENT_METHODS else method)
                        for method in PaymentMethod.values]


def _subscription_life(rng, history, customer, plan, ids, now) -> None:
    from subscriptions.periods import add_months, months_per_period

    sub_id = next(ids["subs"])
    start = YEAR_START - timedelta(days=rng.randrange(0, 365), hours=rng.randrange(24))
    months = months_per_period(interval=plan.interval, interval_count=plan.interval_count)
    ends = rng.random() < 0.12
    end_at = YEAR_START + timedelta(days=rng.randrange(0, 365)) if ends else None
    period_start, balance = start, 0
    while period_start < YEAR_END and (end_at is None or period_start < end_at):
        period_end = add_months(period_start, months)
        invoice_id = next(ids["invoices"])
        status = rng.choices(["paid", "open", "uncollectible"], weights=[90, 7, 3])[0]
        paid = plan.amount if status == "paid" else 0
        due = plan.amount - paid if status != "paid" else 0
        history.rows["invoices"].append((
            invoice_id, f"B-{invoice_id}", customer.pk, sub_id, "subscription_cycle", period_start, period_end, status,
            plan.currency, plan.amount, plan.amount, paid, due, period_start + timedelta(days=14), period_start,
            period_start + timedelta(hours=2) if paid else None, 0, "{}", now, now))
        history.rows["lines"].append((invoice_id, "subscription", plan.name, Decimal(1), Decimal(plan.amount),
                                      plan.amount, period_start, period_end, "{}"))
        if paid:
            method, provider = rng.choice(history.methods)
            history.rows["payments"].append((
                next(ids["payments"]), customer.pk, invoice_id, plan.amount, plan.currency, method, provider,
                "succeeded", 0, "", "", "", "{}", period_start + timedelta(hours=1), now,
                period_start + timedelta(hours=2)))
        grant = rng.random() < 0.5 or balance < 50
        amount = 100 if grant else -rng.randrange(1, min(balance, 80) + 1)
        balance += amount
        history.rows["ledger"].append((customer.pk, "grant" if grant else "debit", amount, balance,
                                       period_start + timedelta(hours=3), "system:bench", ""))
        period_start = period_end
    status = "canceled" if ends else "active"
    current_end = period_start
    history.rows["subs"].append((sub_id, customer.pk, plan.pk, status, start, add_months(current_end, -months),
                                 current_end, False, "{}", now, now, end_at, end_at))
    history.rows["events"].append((sub_id, "created", "", "active", plan.pk, None, "{}", start, "system:bench", ""))
    if ends:
        history.rows["events"].append((sub_id, "status_changed", "active", "canceled", None, None, "{}", end_at,
                                       "system:bench", ""))


def seed(customers: int) -> dict[str, int]:
    from django.db import connection, transaction

    from core.bulk import ids_reserve, rows_copy
    from credits.models import CreditLedgerEntry
    from payments.models import Invoice, InvoiceLine, Payment
    from subscriptions.models import Subscription, SubscriptionEvent

    rng = random.Random(2026)
    plans = _plans()
    history, now = History(), datetime.now(UTC)
    # A monthly subscription started up to a year before the timed year bills at most 26 periods by now.
    most = customers * 26
    ids = {"subs": iter(ids_reserve(model=Subscription, count=customers)),
           "invoices": iter(ids_reserve(model=Invoice, count=most)),
           "payments": iter(ids_reserve(model=Payment, count=most))}
    for customer in _customers(customers, rng):
        plan = rng.choice([p for p in plans if p.currency == customer.currency])
        _subscription_life(rng, history, customer, plan, ids, now)
    fields = {
        "subs": (Subscription, ("id", "customer", "plan", "status", "billing_cycle_anchor", "current_period_start",
                                "current_period_end", "cancel_at_period_end", "metadata", "created_at", "updated_at",
                                "canceled_at", "ended_at")),
        "events": (SubscriptionEvent, ("subscription", "kind", "from_status", "to_status", "to_plan", "from_plan",
                                       "data", "created_at", "actor_label", "reason")),
        "invoices": (Invoice, ("id", "number", "customer", "subscription", "billing_reason", "period_start",
                               "period_end", "status", "currency", "subtotal", "total", "amount_paid", "amount_due",
                               "due_date", "issued_at", "paid_at", "attempt_count", "metadata", "created_at",
                               "updated_at")),
        "lines": (InvoiceLine, ("invoice", "kind", "description", "quantity", "unit_amount", "amount", "period_start",
                                "period_end", "metadata")),
        "payments": (Payment, ("id", "customer", "invoice", "amount", "currency", "method", "provider", "status",
                               "amount_refunded", "failure_code", "failure_reason", "reference", "metadata",
                               "created_at", "updated_at", "succeeded_at")),
        "ledger": (CreditLedgerEntry, ("customer", "kind", "amount", "balance_after", "created_at", "actor_label",
                                       "reason")),
    }
    with transaction.atomic():
        for name in ("subs", "events", "invoices", "lines", "payments", "ledger"):
            model, columns = fields[name]
            rows_copy(model=model, fields=[f if f in ("id",) else model._meta.get_field(f).attname for f in columns],
                      rows=history.rows[name])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {name: len(rows) for name, rows in history.rows.items()}


def backfill(groups: list[str] | None = None) -> dict[str, float]:
    """The history went in by COPY, past the services that keep the rollups: write them as an operator
    would for existing data."""
    from django.db import connection

    from payments.billing.rollup_groups import ROLLUP_GROUPS, rollups_rebuild

    written: dict[str, float] = {}
    for group in groups or ROLLUP_GROUPS:
        started = time.monotonic()
        written.update(rollups_rebuild(groups=[group]))
        written[f"{group}_seconds"] = round(time.monotonic() - started, 1)
    with connection.cursor() as cursor:
        # What autovacuum does to a table soon after a bulk load: the visibility map lets the receivables'
        # partial index answer without visiting the invoices.
        cursor.execute("VACUUM ANALYZE payments_invoice")
        cursor.execute("ANALYZE")
    return written


def _timed(function, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return times[max(0, math.ceil(0.95 * runs) - 1)], statistics.median(times)


def reports(runs: int, only: str | None) -> list[tuple[str, float, float]]:
    from django.db import connection

    from payments.billing.forecast_classes import billing_forecast_days
    from reports.selectors import (
        ReportRange,
        report_churn,
        report_collected_by_month_and_method,
        report_credits,
        report_mrr,
        report_payment_summary,
        report_receivables,
        report_revenue,
        report_subscriptions,
    )
    from usage.selectors import usage_totals

    year = ReportRange(start=YEAR_START, end=YEAR_END)
    # From and to inside days: whole days from the rollups, the two partial days from the source rows.
    inside_days = ReportRange(start=YEAR_START + timedelta(days=9, hours=7, minutes=13),
                              end=YEAR_END - timedelta(days=11, hours=5))

    def count_rows():
        with connection.cursor() as cursor:
            cursor.execute("SELECT (SELECT count(*) FROM payments_invoice WHERE issued_at >= %s AND issued_at < %s)"
                           " + (SELECT count(*) FROM payments_payment WHERE created_at >= %s AND created_at < %s)",
                           [YEAR_START, YEAR_END, YEAR_START, YEAR_END])
            return cursor.fetchone()[0]

    cases = [
        ("count(*) invoices + payments in the year (reference)", count_rows),
        ("payment-summary", lambda: report_payment_summary(period=year)),
        ("revenue group_by=month", lambda: report_revenue(period=year, group_by="month")),
        ("revenue group_by=plan", lambda: report_revenue(period=year, group_by="plan")),
        ("revenue group_by=method", lambda: report_revenue(period=year, group_by="method")),
        ("collected by month and method", lambda: report_collected_by_month_and_method(period=year)),
        ("payment-summary (from/to inside days)", lambda: report_payment_summary(period=inside_days)),
        ("revenue group_by=plan (from/to inside days)", lambda: report_revenue(period=inside_days, group_by="plan")),
        ("mrr (12 months)", lambda: report_mrr(period=year)),
        ("churn (12 months)", lambda: report_churn(period=year)),
        ("mrr (12 months, EUR)", lambda: report_mrr(period=ReportRange(start=YEAR_START, end=YEAR_END,
                                                                       currency="EUR"))),
        # Starting and ending inside a month: the two partial windows come from the MRR change points.
        ("mrr (partial first and last month)", lambda: report_mrr(period=ReportRange(
            start=YEAR_START + timedelta(days=9), end=YEAR_END - timedelta(days=11)))),
        # The worst case for the change points: past the history's end every paid period runs out, so about
        # two thirds of the customers have a change in the last window.
        ("mrr (partial, into the month every paid period ends)", lambda: report_mrr(period=ReportRange(
            start=YEAR_END - timedelta(days=11), end=YEAR_END + timedelta(days=20)))),
        ("subscriptions at the year's end", lambda: report_subscriptions(at=YEAR_END, currency=None)),
        ("receivables at the year's end", lambda: report_receivables(period=year)),
        ("credits (12 months)", lambda: report_credits(period_start=YEAR_START, period_end=YEAR_END, currency=None)),
        ("usage group_by=meter", lambda: usage_totals(start=YEAR_START, end=YEAR_END, group_by="meter")),
        # From the year's end: every live subscription's period ends within the next month.
        ("forecast days=30", lambda: billing_forecast_days(now=YEAR_END, days=30)),
        ("forecast days=366", lambda: billing_forecast_days(now=YEAR_END, days=366)),
    ]
    return [(name, *_timed(function, runs)) for name, function in cases
            if only is None or only in name or name.startswith("count(*)")]


def main():
    args = parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    prepare(args.database, reuse=args.reuse, migrate=bool(args.rebuild))
    if args.reuse and args.rebuild:
        started = time.monotonic()
        written = backfill(args.rebuild)
        print(f"rebuilt the rollup groups {', '.join(args.rebuild)} in {time.monotonic() - started:.1f} s: "
              f"{json.dumps(written)}")
    if not args.reuse:
        started = time.monotonic()
        counts = seed(args.customers)
        print(f"seeded {args.customers:,} customers in {time.monotonic() - started:.1f} s: "
              f"{json.dumps(counts)}; {os.cpu_count()} CPUs")
        started = time.monotonic()
        written = backfill()
        print(f"backfilled the report rollups (manage.py billing rollups-rebuild) in "
              f"{time.monotonic() - started:.1f} s: {json.dumps(written)}")
    print(f"load average before timing: {load}")
    for name, p95, median in reports(args.runs, args.only):
        print(f"{name:<55} p95 {p95:9.1f} ms   median {median:9.1f} ms   ({args.runs} runs)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
