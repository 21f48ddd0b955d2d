"""Bulk writes for batch jobs (the billing run): COPY instead of INSERT, ids reserved up front.

A billing batch writes thousands of rows (invoices, lines, audit rows, grants, ledger rows). Django's
bulk_create builds a model instance and adapts every field of every row in Python, which costs more than
the database's own work; COPY with ids taken from the table's sequence beforehand lets a batch write its
rows and their foreign keys (lines -> invoice, ledger -> grant) in one round trip per table. Callers pass
values already in their database form (JSON as text).

Each function here is the one seam for its PostgreSQL construct: on PostgreSQL (production, the tests, the
benchmarks) it runs the fast statement; on the embedded default (SQLite, `make run`) it does the same work
through the ORM, one statement per table or per row, which is plenty for a demo database. Callers never
look at the database vendor.
"""

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from django.db import connection
from django.db.models import DateTimeField, JSONField, Model
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core.audit import Actor

try:
    # The row formatter `Copy.write_row` calls (C in psycopg's binary package): see _rows_write.
    from psycopg._copy_base import format_row_text as _format_row_text
except ImportError:  # pragma: no cover - a psycopg that moved it; rows then go through write_row
    _format_row_text = None


def ids_reserve(*, model: type[Model], count: int) -> list[int]:
    """`count` fresh primary keys from the table's identity sequence (one query)."""
    if count <= 0:
        return []
    meta = model._meta
    if connection.vendor == "sqlite":
        return _sqlite_ids_reserve(table=meta.db_table, count=count)
    # The sequence is looked up once per statement: as an argument of nextval() the lookup (a text to
    # regclass cast, a catalog search) ran once per id, nine tenths of the statement's time.
    with connection.cursor() as cursor:
        cursor.execute("WITH seq AS MATERIALIZED (SELECT pg_get_serial_sequence(%s, %s)::regclass AS id) "
                       "SELECT nextval(seq.id) FROM seq, generate_series(1, %s)",
                       [meta.db_table, meta.pk.column, count])
        return [row[0] for row in cursor.fetchall()]


def _sqlite_ids_reserve(*, table: str, count: int) -> list[int]:
    """SQLite's AUTOINCREMENT counter lives in `sqlite_sequence`; moving it forward by `count` (a write,
    so it takes the database's write lock until the transaction ends) reserves the ids the same way."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO sqlite_sequence (name, seq) SELECT %s, 0 "
                       "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = %s)", [table, table])
        cursor.execute(f"UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(rowid), 0) FROM {table})) "
                       "+ %s WHERE name = %s RETURNING seq", [count, table])
        last = cursor.fetchone()[0]
    return list(range(last - count + 1, last + 1))


def rows_copy(*, model: type[Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY `rows` (tuples aligned with `fields`, model field names) into the model's table.

    Database errors (a unique constraint, a check) surface as Django's own exception classes."""
    meta = model._meta
    if connection.vendor == "sqlite":
        _sqlite_rows_insert(model=model, fields=fields, rows=rows)
        return
    columns = ", ".join(meta.get_field(name).column for name in fields)
    instants = [index for index, name in enumerate(fields) if isinstance(meta.get_field(name), DateTimeField)]
    with (connection.cursor() as cursor, connection.wrap_database_errors,
          cursor.cursor.copy(f"COPY {meta.db_table} ({columns}) FROM STDIN") as copy):
        _rows_write(copy=copy, rows=rows if not instants else _instants_as_text(rows=rows, instants=instants))


# Bytes of COPY data gathered before each write to the connection.
_COPY_CHUNK = 64 * 1024


def _rows_write(*, copy, rows: Iterable[Sequence]) -> None:
    """Each row in COPY's text format, with psycopg's own C formatter (the one `Copy.write_row` calls), into
    chunks written whole. `write_row` wraps that call in two Python calls per row; a billing batch copies
    about ten rows per subscription, and those calls were a twentieth of the run's CPU. The formatter is
    psycopg's internal (psycopg is pinned, and every COPY in the suite goes through here); without it, rows
    go one by one through `write_row`."""
    if _format_row_text is None:
        for row in rows:
            copy.write_row(row)
        return
    transformer, chunk = copy.formatter.transformer, bytearray()
    for row in rows:
        _format_row_text(row, transformer, chunk)
        if len(chunk) > _COPY_CHUNK:
            copy.write(chunk)
            chunk = bytearray()
    if chunk:
        copy.write(chunk)


def _instants_as_text(*, rows: Iterable[Sequence], instants: list[int]) -> Iterator[list]:
    """The rows with their timestamps as COPY text, each distinct one formatted once per COPY. psycopg formats
    an aware datetime in about a microsecond, ten times any other value, and a batch's rows repeat a few
    instants (the batch's clock, its period boundaries) thousands of times; the ISO text with its offset is
    the same instant."""
    texts: dict[datetime, str] = {}
    known = texts.get
    for row in rows:
        row = list(row)
        for index in instants:
            instant = row[index]
            if instant is not None:
                text = known(instant)
                if text is None:
                    text = texts[instant] = instant.isoformat()
                row[index] = text
        yield row


def _sqlite_rows_insert(*, model: type[Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    given = [model._meta.get_field(name) for name in fields]
    # COPY takes JSON as text; the ORM wants the value itself.
    decode = [isinstance(f, JSONField) for f in given]
    instances = [
        model(**{f.attname: (json.loads(v) if d and isinstance(v, str) else v)
                 for f, d, v in zip(given, decode, row, strict=True)})
        for row in rows
    ]
    # A raw insert, as COPY is: the values given are the values stored. bulk_create would run each field's
    # pre_save, and an auto_now_add timestamp would become the insert's own instant instead of the `now`
    # the caller wrote into rows it also counted in a rollup (`billing verify` then found them apart).
    # Columns the caller left out get the model's defaults, and timestamps the insert's instant, as before.
    now = timezone.now()
    # Generated columns (the database computes them) take no value from an INSERT.
    others = [f for f in model._meta.concrete_fields if f not in given and not f.primary_key and not f.generated]
    for field in others:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            for instance in instances:
                setattr(instance, field.attname, now)
    for start in range(0, len(instances), 500):
        model._base_manager._insert(instances[start:start + 500], fields=[*given, *others], raw=True,
                                    using=connection.alias)


def rows_update(*, model: type[Model], columns: dict[str, tuple[str, list]], ids: Iterable[int],
                constants: dict[str, object] | None = None) -> None:
    """UPDATE many rows (by primary key) to per-row values in one statement (`unnest` of one array per
    column), setting `constants` on every row too.

    `columns` maps a column to (PostgreSQL array type, values aligned with `ids`). Django's bulk_update
    builds a CASE per column and row, which is far slower at the billing run's batch sizes. SQLite (the
    embedded default) has no arrays: there each row is one ORM update."""
    ids = list(ids)
    if not ids:
        return
    constants = constants or {}
    names = list(columns)
    if connection.vendor == "sqlite":
        for index, pk in enumerate(ids):
            model.objects.filter(pk=pk).update(**{name: columns[name][1][index] for name in names}, **constants)
        return
    table, key = model._meta.db_table, model._meta.pk.column
    assignments = ", ".join([f"{name} = v.{name}" for name in names] + [f"{name} = %s" for name in constants])
    arrays = ", ".join(f"%s::{columns[name][0]}[]" for name in names)
    sql = (f"UPDATE {table} AS t SET {assignments} FROM unnest(%s::bigint[], {arrays}) "
           f"AS v(_key, {', '.join(names)}) WHERE t.{key} = v._key")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*constants.values(), pg_array(ids), *[pg_array(columns[name][1]) for name in names]])


def pg_array(values: Iterable) -> str:
    """`values` as one PostgreSQL array literal ('{1,2,3}'), the parameter of a `%s::<type>[]` cast.

    Django's PostgreSQL cursor binds parameters on the client, and psycopg quotes a Python list element by
    element in Python: for a batch of 500 ids and 500 timestamps that took about 8 ms, longer than the
    statement runs; this string is built in well under a millisecond and is quoted as one value. Integers
    go bare, None as NULL, anything else (datetimes in ISO format, text, Decimal) double-quoted with backslash
    and `"` escaped, as PostgreSQL's array input reads them.

    A billing batch builds about 26 elements per subscription, mostly arrays of one type only: ids, then
    timestamps. Those two shapes skip the per-element dispatch (it was 6% of the run's CPU): `str` of an int
    is its literal, and an aware datetime's ISO form holds no quote or backslash to escape."""
    values = values if isinstance(values, list | tuple) else list(values)
    kinds = set(map(type, values))
    if kinds == {int}:
        return "{" + ",".join(map(str, values)) + "}"
    if kinds == {datetime}:
        return '{"' + '","'.join(value.isoformat() for value in values) + '"}'
    return "{" + ",".join(_array_element(value) for value in values) + "}"


def _array_element(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict | list | tuple):
        raise TypeError("pg_array takes scalar values")
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_of(values: Iterable, sql_type: str = "bigint") -> RawSQL | list:
    """For `field__in=array_of(ids)`: the batch goes to PostgreSQL as one array parameter. A plain
    `__in=[...]` makes one placeholder per value, and formatting a 500-placeholder statement costs the
    client more than the database spends running it. SQLite has no arrays: there it is the plain list."""
    if connection.vendor == "sqlite":
        return list(values)
    return RawSQL(f"SELECT unnest(%s::{sql_type}[])", [pg_array(values)])


def json_text(value) -> str:
    # Most audit rows of a batch carry no data: no encoder call for them.
    return json.dumps(value, separators=(",", ":")) if value else "{}"


def audit_values(*, actor: Actor, reason: str, now: datetime) -> tuple:
    """(created_at, actor_id, actor_label, reason) of an AuditRow, as `AuditRow.stamp` would set them."""
    user_id = actor.user.pk if actor.user is not None and actor.user.pk else None
    return now, user_id, actor.label, reason[:500]


AUDIT_FIELDS = ("created_at", "actor", "actor_label", "reason")
