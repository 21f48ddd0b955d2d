"""The money rollups recomputed from scratch from the invoices, payments and refunds, set-based (one
INSERT ... SELECT per rollup): `money_rollups_rebuild` writes them (the backfill for rows written before
the rollups existed, or by COPY; `manage.py billing rollups-rebuild --only money`), `money_rollup_mismatches`
compares them with what is stored (`manage.py billing verify`)."""

from django.db import connection, transaction
from django.db.models import Q

from payments.services.money_rollups import ROLLUPS, Rollup, rollup_grouped, rollup_grouped_sql


def _everything(rollup: Rollup) -> dict[str, Q]:
    return {source.name: Q() for source in rollup.sources}


def money_rollups_rebuild() -> dict[str, int]:
    """Replace every money rollup row with its recomputation, in one transaction. On PostgreSQL the tables
    are locked against writers first (readers go on reading the old rows): a writer's delta then lands
    either before the recomputation saw its change or after it committed, never counted twice."""
    written = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for name, rollup in ROLLUPS.items():
            if connection.vendor == "postgresql":
                cursor.execute(f"LOCK TABLE {rollup.table} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute(f"DELETE FROM {rollup.table}")
            sql, params = rollup_grouped_sql(rollup=rollup, where=_everything(rollup))
            cursor.execute(f"INSERT INTO {rollup.table} ({', '.join((*rollup.keys, *rollup.figures))}) {sql}", params)
            written[name] = cursor.rowcount
    return written


def money_rollup_mismatches() -> list[dict]:
    """Every money rollup row that differs from its recomputation (a missing row, an extra one, another
    figure). Rows whose figures are all 0 (everything they counted moved away) are as good as absent."""
    mismatches: list[dict] = []
    for name, rollup in ROLLUPS.items():
        expected = {k: v for k, v in rollup_grouped(rollup=rollup, where=_everything(rollup)).items() if any(v)}
        width = len(rollup.keys)
        stored = {tuple(row[:width]): list(row[width:])
                  for row in rollup.model.objects.values_list(*rollup.keys, *rollup.figures) if any(row[width:])}
        for key in sorted(stored.keys() | expected.keys(), key=str):
            if stored.get(key) != expected.get(key):
                mismatches.append({"kind": f"money_{name}_day", "key": key, "stored": stored.get(key),
                                   "recomputed": expected.get(key)})
    return mismatches
