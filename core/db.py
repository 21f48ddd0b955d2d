"""Reading timestamps PostgreSQL holds but Python cannot: before year 1 (a year-1 date stored with a
positive offset is 1 BC in UTC) or after 9999.

psycopg refuses to load such a value, so one bad row would make every list, admin page and export
that reads it answer 500. The doors refuse new ones (core.safe_input); rows stored before
that are read as the nearest instant Python has, so the pages render and staff can find them.
"""

from datetime import UTC, date, datetime

from django.db.backends.signals import connection_created

# Anything else would be loaded by Django's own loader, so this one must keep its `timezone` contract.
from django.db.backends.postgresql.psycopg_any import BaseTzLoader  # isort: skip
from psycopg import DataError
from psycopg.types.datetime import DateLoader, TimestampLoader

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def _clamped(load, data, *, earliest, latest):
    try:
        return load(data)
    except DataError:
        return earliest if bytes(data).endswith(b" BC") else latest


class ClampedTimestamptzLoader(BaseTzLoader):
    timezone = UTC

    def load(self, data):
        # Installed only on connections whose session is in UTC, so PostgreSQL writes every ordinary value as
        # "YYYY-MM-DD HH:MM:SS[.ffffff]+00", which `datetime.fromisoformat` (C) reads as the same aware UTC
        # instant in a twentieth of the time of psycopg's Python parser that Django's loader extends (4 us a
        # value: a billing batch reads several per subscription). Anything else (1 BC, year 10000, infinity,
        # another DateStyle) takes the general path below.
        text = bytes(data)
        if text.endswith(b"+00"):
            try:
                return datetime.fromisoformat(text.decode())
            except ValueError:
                pass
        return _clamped(super().load, data, earliest=EARLIEST, latest=LATEST)


# Naive timestamps and dates come from expressions over those columns (the admin's date hierarchy
# truncates them to years and days).
class ClampedTimestampLoader(TimestampLoader):
    def load(self, data):
        return _clamped(super().load, data, earliest=datetime.min, latest=datetime.max)


class ClampedDateLoader(DateLoader):
    def load(self, data):
        return _clamped(super().load, data, earliest=date.min, latest=date.max)


def _register_clamped_loader(sender, connection, **kwargs) -> None:
    if connection.vendor == "postgresql" and connection.timezone == UTC:
        adapters = connection.connection.adapters
        adapters.register_loader("timestamptz", ClampedTimestamptzLoader)
        adapters.register_loader("timestamp", ClampedTimestampLoader)
        adapters.register_loader("date", ClampedDateLoader)


def clamped_timestamps_install() -> None:
    """Called once from the app config: every new PostgreSQL connection gets the loader."""
    connection_created.connect(_register_clamped_loader, dispatch_uid="billing-clamped-timestamptz")
