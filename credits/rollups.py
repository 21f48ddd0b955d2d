"""Keeping the credits report's rollup (`CreditLedgerDay`) true in the transaction of every ledger row.

The debit on PostgreSQL adds to it inside its one statement (the `credits_debit` function, migration credits
0006); every other writer (grants, expiries, reversals, the general debit path, the billing run's batches)
calls `credit_ledger_days_add` once per call with all the rows it wrote: one statement whatever their number.
The customer's currency is read in that statement (a join), so callers need not know it."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connection

from core.bulk import pg_array
from core.increments import increments_add
from credits.models import CreditLedgerDay, CreditSource, LedgerKind

# In the order of the report's columns.
CREDIT_DAY_COLUMNS = ("granted", "purchased", "used", "expired", "refunded", "adjusted")
# Shards of the debit function (customer id % 64) and of every other writer (64 + customer id % 8): see
# CreditLedgerDay.shard.
DEBIT_SHARDS = 64
OTHER_SHARDS = 8


def day_start(instant: datetime) -> datetime:
    """The UTC midnight starting the day of `instant`."""
    return instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def ledger_column(*, kind: str, grant_source: str | None) -> str:
    """The report column of a ledger row: a purchased grant's row is `purchased`, any other grant row
    `granted`, every other kind its own column."""
    if kind == LedgerKind.GRANT:
        return "purchased" if grant_source == CreditSource.PURCHASE else "granted"
    return {LedgerKind.DEBIT: "used", LedgerKind.EXPIRY: "expired", LedgerKind.REFUND: "refunded",
            LedgerKind.ADJUSTMENT: "adjusted"}[kind]


def other_shard(customer_id: int) -> int:
    return DEBIT_SHARDS + customer_id % OTHER_SHARDS


# {(customer id, day, shard): figures in CREDIT_DAY_COLUMNS order}
_Deltas = dict[tuple[int, datetime, int], list[int]]

# The currency by the customer's primary key, row by row (LATERAL, kept apart by OFFSET 0): as a plain join
# of a billing-run batch's 2,000 rows the planner hashed the whole customer table, a scan per batch that grew
# with the customers (25 ms at 20,000).
_PG_ADD_SQL = """
INSERT INTO {table} AS d (day, currency, shard, {columns})
SELECT v.day, c.currency, v.shard, {sums}
FROM unnest(%s::bigint[], %s::timestamptz[], %s::smallint[], {arrays}) AS v(customer_id, day, shard, {columns})
CROSS JOIN LATERAL (SELECT currency FROM subscriptions_customer WHERE id = v.customer_id OFFSET 0) AS c
GROUP BY v.day, c.currency, v.shard ORDER BY v.day, c.currency, v.shard
ON CONFLICT (day, currency, shard) DO UPDATE SET {increments}
"""
_SQLITE_ADD_SQL = """
WITH v(customer_id, day, shard, {columns}) AS (VALUES {values})
INSERT INTO {table} AS d (day, currency, shard, {columns})
SELECT v.day, c.currency, v.shard, {sums}
FROM v JOIN subscriptions_customer AS c ON c.id = v.customer_id WHERE true
GROUP BY v.day, c.currency, v.shard ORDER BY v.day, c.currency, v.shard
ON CONFLICT (day, currency, shard) DO UPDATE SET {increments}
"""


def credit_ledger_days_add(*, rows: Iterable[tuple[int, datetime, str, int]]) -> None:
    """Add ledger rows (customer id, created at, report column, signed amount) to their days, in one
    statement, in (day, currency, shard) order so concurrent writers lock the rows in one order."""
    deltas: _Deltas = defaultdict(lambda: [0] * len(CREDIT_DAY_COLUMNS))
    for customer_id, created_at, column, amount in rows:
        deltas[(customer_id, day_start(created_at), other_shard(customer_id))][CREDIT_DAY_COLUMNS.index(column)] \
            += amount
    if deltas:
        # At the end of an `increments_deferred` block (the billing run's batch), with the block's other rows.
        increments_add(name=CreditLedgerDay._meta.db_table, deltas=deltas, write=_days_add)


def _days_add(deltas: _Deltas) -> None:
    table = CreditLedgerDay._meta.db_table
    columns = ", ".join(CREDIT_DAY_COLUMNS)
    sums = ", ".join(f"sum(v.{c})" for c in CREDIT_DAY_COLUMNS)
    increments = ", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in CREDIT_DAY_COLUMNS)
    keys = sorted(deltas)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(["%s::bigint[]"] * len(CREDIT_DAY_COLUMNS))
            cursor.execute(_PG_ADD_SQL.format(table=table, columns=columns, sums=sums, arrays=arrays,
                                              increments=increments),
                           [pg_array([k[0] for k in keys]), pg_array([k[1] for k in keys]),
                            pg_array([k[2] for k in keys]),
                            *(pg_array([deltas[k][i] for k in keys]) for i in range(len(CREDIT_DAY_COLUMNS)))])
            return
        # The embedded default: chunks keep the statement under SQLite's parameter limit.
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            values = ", ".join(["(" + ", ".join(["%s"] * (3 + len(CREDIT_DAY_COLUMNS))) + ")"] * len(chunk))
            cursor.execute(_SQLITE_ADD_SQL.format(table=table, columns=columns, sums=sums, values=values,
                                                  increments=increments),
                           [value for k in chunk for value in
                            (k[0], connection.ops.adapt_datetimefield_value(k[1]), k[2], *deltas[k])])
