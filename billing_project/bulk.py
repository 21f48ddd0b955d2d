"""Bulk writes for batch jobs (the billing run): COPY instead of INSERT, ids reserved up front.

A billing batch writes thousands of rows (invoices, lines, audit rows, grants, ledger rows). Django's
bulk_create builds a model instance and adapts every field of every row in Python, which costs more than
the database's own work; COPY with ids taken from the table's sequence beforehand lets a batch write its
rows and their foreign keys (lines -> invoice, ledger -> grant) in one round trip per table. Callers pass
values already in their database form (JSON as text). PostgreSQL only, like the billing run itself.
"""

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection
from django.db.models import Model
from django.db.models.expressions import RawSQL

from billing_project.audit import Actor


def ids_reserve(*, model: type[Model], count: int) -> list[int]:
    """`count` fresh primary keys from the table's identity sequence (one query)."""
    if count <= 0:
        return []
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [meta.db_table, meta.pk.column, count])
        return [row[0] for row in cursor.fetchall()]


def rows_copy(*, model: type[Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY `rows` (tuples aligned with `fields`, model field names) into the model's table.

    Database errors (a unique constraint, a check) surface as Django's own exception classes."""
    meta = model._meta
    columns = ", ".join(meta.get_field(name).column for name in fields)
    with (connection.cursor() as cursor, connection.wrap_database_errors,
          cursor.cursor.copy(f"COPY {meta.db_table} ({columns}) FROM STDIN") as copy):
        for row in rows:
            copy.write_row(row)


def array_of(values: Iterable, sql_type: str = "bigint") -> RawSQL:
    """For `field__in=array_of(ids)`: the batch goes to PostgreSQL as one array parameter. A plain
    `__in=[...]` makes one placeholder per value, and formatting a 500-placeholder statement costs the
    client more than the database spends running it."""
    return RawSQL(f"SELECT unnest(%s::{sql_type}[])", [list(values)])


def json_text(value) -> str:
    return json.dumps(value or {}, separators=(",", ":"))


def audit_values(*, actor: Actor, reason: str, now: datetime) -> tuple:
    """(created_at, actor_id, actor_label, reason) of an AuditRow, as `AuditRow.stamp` would set them."""
    user_id = actor.user.pk if actor.user is not None and actor.user.pk else None
    return now, user_id, actor.label, reason[:500]


AUDIT_FIELDS = ("created_at", "actor", "actor_label", "reason")
