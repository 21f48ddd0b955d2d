"""The credits report's rollup recomputed from the ledger in one set-based statement: `credit_days_rebuild`
replaces it (`manage.py billing rollups-rebuild`, the backfill for rows written before it existed or by COPY),
`credit_day_mismatches` compares it with what is stored (`manage.py billing verify`). Shards are how writers
spread their rows, not part of the figures: the comparison sums them."""

from collections import defaultdict

from django.db import connection, transaction

from credits.models import CreditLedgerDay
from credits.rollups import CREDIT_DAY_COLUMNS

_DAY = {"postgresql": "date_trunc('day', l.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        # Django stores SQLite datetimes as UTC text: the day is its date at midnight.
        "sqlite": "substr(l.created_at, 1, 10) || ' 00:00:00'"}
_SUMS = ("sum(CASE WHEN l.kind = 'grant' AND (g.source IS NULL OR g.source <> 'purchase') THEN l.amount ELSE 0 END)",
         "sum(CASE WHEN l.kind = 'grant' AND g.source = 'purchase' THEN l.amount ELSE 0 END)",
         "sum(CASE WHEN l.kind = 'debit' THEN l.amount ELSE 0 END)",
         "sum(CASE WHEN l.kind = 'expiry' THEN l.amount ELSE 0 END)",
         "sum(CASE WHEN l.kind = 'refund' THEN l.amount ELSE 0 END)",
         "sum(CASE WHEN l.kind = 'adjustment' THEN l.amount ELSE 0 END)")
_SELECT = """
SELECT {day} AS day, c.currency, 0 AS shard, {sums}
FROM credits_creditledgerentry AS l
JOIN subscriptions_customer AS c ON c.id = l.customer_id
LEFT JOIN credits_creditgrant AS g ON g.id = l.grant_id
GROUP BY 1, 2, 3
"""


def _select() -> str:
    return _SELECT.format(day=_DAY[connection.vendor], sums=", ".join(_SUMS))


def credit_days_rebuild() -> dict[str, int]:
    """Replace every CreditLedgerDay row with the ledger's sums, in one transaction (readers see the old rows
    until it commits). One row per (day, currency), in shard 0: the shards only spread live writers, so a
    rebuild also compacts the days written since (up to 72 rows each) into one."""
    table = CreditLedgerDay._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
        cursor.execute(f"INSERT INTO {table} (day, currency, shard, {', '.join(CREDIT_DAY_COLUMNS)}) "
                       f"{_select()}")
    return {"credit_days": CreditLedgerDay.objects.count()}


def credit_day_mismatches() -> list[dict]:
    """Every (day, currency) whose stored figures (shards summed) differ from the ledger's."""
    with connection.cursor() as cursor:
        cursor.execute(_select())
        expected = {(_day_key(day), currency): list(figures) for day, currency, _shard, *figures in cursor.fetchall()}
    stored: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(CREDIT_DAY_COLUMNS))
    for day, currency, *figures in CreditLedgerDay.objects.values_list("day", "currency", *CREDIT_DAY_COLUMNS):
        row = stored[(_day_key(day), currency)]
        stored[(_day_key(day), currency)] = [a + b for a, b in zip(row, figures, strict=True)]
    mismatches = []
    for key in sorted(stored.keys() | expected.keys(), key=str):
        have, want = stored.get(key), expected.get(key)
        if (have if have and any(have) else None) != (want if want and any(want) else None):
            mismatches.append({"kind": "credit_ledger_day", "key": key, "stored": have, "recomputed": want})
    return mismatches


def _day_key(day) -> str:
    """A day as text, the same whether the database gave a datetime or SQLite's text."""
    return str(day)[:10]
