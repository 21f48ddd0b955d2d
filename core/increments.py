"""Adding to rollup rows: `INSERT ... ON CONFLICT (key) DO UPDATE SET x = x + EXCLUDED.x`, the statement the
MRR rollups use (subscriptions.mrr_rollups.mrr_month_add), for any table of key columns and summed columns.

Rows go in key order, so two writers adding to the same rows lock them in one order (no deadlock); rows whose
figures are all zero are skipped (they would lock a row for nothing). PostgreSQL and SQLite (3.24+, the
embedded default) both take the statement as written."""

from collections.abc import Mapping, Sequence

from django.db import connection

# Rows per statement: one statement per 1,000 keys keeps the parameter count under SQLite's limit.
_CHUNK = 1000


def rows_increment(*, table: str, keys: Sequence[str], figures: Sequence[str],
                   deltas: Mapping[tuple, Sequence[int]]) -> int:
    """Add each key's figures to its row of `table`, creating it. `deltas`: {key tuple: figures aligned with
    `figures`}. Returns the number of rows touched."""
    changed = sorted((key, values) for key, values in deltas.items() if any(values))
    if not changed:
        return 0
    columns = ", ".join((*keys, *figures))
    increments = ", ".join(f"{f} = {table}.{f} + EXCLUDED.{f}" for f in figures)
    placeholders = "(" + ", ".join(["%s"] * (len(keys) + len(figures))) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(changed), _CHUNK):
            chunk = changed[start:start + _CHUNK]
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(chunk))} "
                           f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {increments}",
                           [value for key, values in chunk for value in (*key, *values)])
    return len(changed)
