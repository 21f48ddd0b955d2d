"""Parts of a timestamp in UTC, as SQL both databases accept in a stored generated column.

A generated column may only use immutable (PostgreSQL) or deterministic built-in (SQLite) functions, so
Django's own TruncDate/Extract do not fit everywhere: on SQLite they call Python functions Django
registers per connection, which a schema must not depend on. PostgreSQL reads a timestamptz at
`AT TIME ZONE 'UTC'` (immutable with a constant zone); SQLite holds Django's datetimes as UTC text
'YYYY-MM-DD HH:MM:SS[.ffffff]', so the parts are substrings of it (the time keeps its microseconds, and
'HH:MM:SS' sorts before 'HH:MM:SS.000001' as the times do)."""

from django.db.models import DateField, Func, IntegerField, TimeField


class _UtcPart(Func):
    arity = 1
    postgresql_template = ""
    sqlite_template = ""

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template=self.postgresql_template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template=self.sqlite_template, **extra_context)


class UtcDate(_UtcPart):
    output_field = DateField()
    postgresql_template = "((%(expressions)s AT TIME ZONE 'UTC')::date)"
    sqlite_template = "substr(%(expressions)s, 1, 10)"


class UtcTime(_UtcPart):
    output_field = TimeField()
    postgresql_template = "((%(expressions)s AT TIME ZONE 'UTC')::time)"
    sqlite_template = "substr(%(expressions)s, 12)"


class UtcDay(_UtcPart):
    """The day of the month."""

    output_field = IntegerField()
    postgresql_template = "(EXTRACT(DAY FROM %(expressions)s AT TIME ZONE 'UTC')::integer)"
    sqlite_template = "CAST(substr(%(expressions)s, 9, 2) AS INTEGER)"


class UtcMonthIndex(_UtcPart):
    """Months since January of year 0 (year * 12 + month - 1): equal modulo a period's months for the
    months a cycle's periods end in."""

    output_field = IntegerField()
    postgresql_template = ("((EXTRACT(YEAR FROM %(expressions)s AT TIME ZONE 'UTC') * 12"
                           " + EXTRACT(MONTH FROM %(expressions)s AT TIME ZONE 'UTC') - 1)::integer)")
    sqlite_template = ("(CAST(substr(%(expressions)s, 1, 4) AS INTEGER) * 12"
                       " + CAST(substr(%(expressions)s, 6, 2) AS INTEGER) - 1)")
