"""Adding to rollup rows: `INSERT ... ON CONFLICT (key) DO UPDATE SET x = x + EXCLUDED.x`, the statement the
MRR rollups use (subscriptions.mrr_rollups.mrr_month_add), for any table of key columns and summed columns.

Rows go in key order, so two writers adding to the same rows lock them in one order (no deadlock); rows whose
figures are all zero are skipped (they would lock a row for nothing). PostgreSQL and SQLite (3.24+, the
embedded default) both take the statement as written.

`increments_deferred` holds a block's increments and writes them when the block ends: the billing run's
batch adds to rows every concurrent batch adds to too (this month's MRR, the day's credit and
subscription-count shards), and each such row stays locked from its upsert to the COMMIT, so a batch that
upserted at its start made a concurrent one wait for its whole batch. Written last, they are held only for
the batch's tail. The figures are the same: the block's deltas per key, summed."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import connection

# Rows per statement: one statement per 1,000 keys keeps the parameter count under SQLite's limit.
_CHUNK = 1000


# {writer name: (writer, {key: summed figures})} of the innermost `increments_deferred` block, if any.
_Pending = dict[str, tuple[Callable[[dict[tuple, list[int]]], object], dict[tuple, list[int]]]]
_PENDING: ContextVar[_Pending | None] = ContextVar("increments_pending", default=None)


@contextmanager
def increments_deferred() -> Iterator[None]:
    """Hold the increments `increments_add` is given inside the block and write them when it ends without an
    error, one writer after another in name order (each in its key order), so two blocks ending at once lock
    the rows in one order. A block inside another joins it: the outer one writes."""
    if _PENDING.get() is not None:
        yield
        return
    pending: _Pending = {}
    token = _PENDING.set(pending)
    try:
        yield
    finally:
        _PENDING.reset(token)
    for name in sorted(pending):
        write, deltas = pending[name]
        write(deltas)


def increments_add(*, name: str, deltas: Mapping[tuple, Sequence[int]],
                   write: Callable[[dict[tuple, list[int]]], object]) -> None:
    """Have `write` add `deltas` ({key: figures}) to its rollup rows: now, or inside `increments_deferred`
    when the block ends (summed per key with the block's other deltas for the same `name`)."""
    pending = _PENDING.get()
    if pending is None:
        write(dict(deltas))
        return
    _, held = pending.setdefault(name, (write, {}))
    for key, figures in deltas.items():
        if key in held:
            held[key] = [a + b for a, b in zip(held[key], figures, strict=True)]
        else:
            held[key] = list(figures)


def rows_increment(*, table: str, keys: Sequence[str], figures: Sequence[str],
                   deltas: Mapping[tuple, Sequence[int]]) -> None:
    """Add each key's figures to its row of `table`, creating it (now, or at the end of an
    `increments_deferred` block). `deltas`: {key tuple: figures aligned with `figures`}."""
    increments_add(name=table, deltas=deltas,
                   write=lambda held: _rows_write(table=table, keys=keys, figures=figures, deltas=held))


def _rows_write(*, table: str, keys: Sequence[str], figures: Sequence[str],
                deltas: Mapping[tuple, Sequence[int]]) -> int:
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
