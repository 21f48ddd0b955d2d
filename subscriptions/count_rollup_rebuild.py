"""The subscriptions-at-a-date rollups recomputed from the audit trail by the report's definition itself
(docs/reports.md): `subscription_counts_rebuild` replaces them in two INSERT ... SELECT (`manage.py billing
rollups-rebuild`, the backfill for rows written before them or by COPY), `subscription_count_mismatches`
compares them with what is stored (`manage.py billing verify`).

Per subscription and instant of its audit rows: the status is the newest non-empty `to_status` by then
(the last one carried forward over rows without one), the plan the `from_plan` of the first plan change
strictly after the instant (the (n+1)th plan change when n are at or before it), else the subscription's
plan today; where that (status, plan) differs from the previous instant's, -1 for the old and +1 for the
new, at the instant. Window functions, so PostgreSQL and SQLite alike."""

from datetime import UTC

from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from subscriptions.count_models import SubscriptionCountChange, SubscriptionCountMonth
from subscriptions.count_rollups import COUNT_SHARDS

_DELTAS = """
WITH ordered AS (
    SELECT e.subscription_id AS sid, e.created_at AS at, e.id, e.from_plan_id AS fp,
           CASE WHEN e.to_status <> '' THEN e.to_status END AS st,
           CASE WHEN e.kind = 'plan_changed' THEN 1 ELSE 0 END AS pc,
           COUNT(CASE WHEN e.to_status <> '' THEN 1 END)
               OVER (PARTITION BY e.subscription_id ORDER BY e.created_at, e.id ROWS UNBOUNDED PRECEDING) AS sg,
           SUM(CASE WHEN e.kind = 'plan_changed' THEN 1 ELSE 0 END)
               OVER (PARTITION BY e.subscription_id ORDER BY e.created_at, e.id ROWS UNBOUNDED PRECEDING) AS pg,
           ROW_NUMBER() OVER (PARTITION BY e.subscription_id, e.created_at ORDER BY e.id DESC) AS newest
    FROM subscriptions_subscriptionevent AS e
), stated AS (
    SELECT sid, at, id, fp, pc, pg, newest, MAX(st) OVER (PARTITION BY sid, sg) AS status FROM ordered
), instants AS (
    SELECT i.sid, i.at, i.status, COALESCE(p.fp, s.plan_id) AS plan
    FROM stated AS i
    JOIN subscriptions_subscription AS s ON s.id = i.sid
    LEFT JOIN stated AS p ON p.sid = i.sid AND p.pc = 1 AND p.pg = i.pg + 1
    WHERE i.newest = 1
), moves AS (
    SELECT sid, at, status, plan,
           LAG(status) OVER (PARTITION BY sid ORDER BY at) AS was_status,
           LAG(plan) OVER (PARTITION BY sid ORDER BY at) AS was_plan
    FROM instants
), deltas AS (
    SELECT sid, at, status, plan, 1 AS delta FROM moves
    WHERE status IS NOT NULL AND (was_status IS NULL OR was_status <> status OR was_plan <> plan)
    UNION ALL
    SELECT sid, at, was_status, was_plan, -1 FROM moves
    WHERE was_status IS NOT NULL AND (was_status <> status OR was_plan <> plan)
)
SELECT {bucket}, status, plan, sid % {shards}, SUM(delta) FROM deltas
GROUP BY 1, 2, 3, 4 HAVING SUM(delta) <> 0
"""
_MONTH = {"postgresql": "date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
          # Django stores SQLite datetimes as UTC text.
          "sqlite": "substr(at, 1, 7) || '-01 00:00:00'"}
_TABLES = ((SubscriptionCountMonth, "month"), (SubscriptionCountChange, "at"))


def _select(bucket_column: str) -> str:
    bucket = _MONTH[connection.vendor] if bucket_column == "month" else "at"
    return _DELTAS.format(bucket=bucket, shards=COUNT_SHARDS)


def subscription_counts_rebuild() -> dict[str, int]:
    """Replace both rollups with their recomputation, in one transaction."""
    written = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for model, column in _TABLES:
            table = model._meta.db_table
            cursor.execute(f"DELETE FROM {table}")
            cursor.execute(f"INSERT INTO {table} ({column}, status, plan_id, shard, delta) {_select(column)}")
            written[table.removeprefix("subscriptions_")] = cursor.rowcount
    return written


def subscription_count_mismatches() -> list[dict]:
    """Every rollup row missing, extra or different from its recomputation."""
    mismatches = []
    for model, column in _TABLES:
        with connection.cursor() as cursor:
            cursor.execute(_select(column))
            expected = {(_instant(when), status, plan, shard): delta for when, status, plan, shard, delta in cursor}
        stored = {(_instant(when), status, plan, shard): delta for when, status, plan, shard, delta in
                  model.objects.exclude(delta=0).values_list(column, "status", "plan_id", "shard", "delta")}
        kind = model._meta.db_table.removeprefix("subscriptions_")
        for key in sorted(stored.keys() | expected.keys(), key=str):
            if stored.get(key) != expected.get(key):
                mismatches.append({"kind": kind, "key": key, "stored": stored.get(key),
                                   "recomputed": expected.get(key)})
    return mismatches


def _instant(value):
    """An aware datetime, whether the database gave one, or SQLite its UTC text or a naive UTC datetime."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
