"""Streamed CSV exports: rows read from a server-side cursor in chunks and written out as they come, so
an export of millions of rows runs in constant memory (the admin's export actions and the API's
`export/` endpoints).

Cells that a spreadsheet would run as a formula (text starting with =, +, -, @, tab or carriage return)
are prefixed with an apostrophe: customers write names, references and notes that finance opens in a
spreadsheet. Numbers are written as they are, so negative amounts stay numbers."""

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

# Rows fetched per round trip from the server-side cursor: large enough to amortise the trip, small
# enough that memory stays flat whatever the export's size.
EXPORT_CHUNK_SIZE = 2000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportSpec:
    """What an export writes: (header, ORM lookup) per column, and the file's base name."""

    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def header(self) -> list[str]:
        return [header for header, _ in self.columns]

    @property
    def lookups(self) -> list[str]:
        return [lookup for _, lookup in self.columns]


def csv_cell(value) -> str | int | Decimal:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True)
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


class _Line:
    """A file-like object whose write() hands back the line csv.writer formatted."""

    def write(self, value: str) -> str:
        return value


def csv_lines(*, header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def export_rows(*, queryset: QuerySet, spec: ExportSpec) -> Iterator[tuple]:
    """The queryset's rows as tuples of the spec's columns, from a server-side cursor, chunk by chunk."""
    return queryset.values_list(*spec.lookups).iterator(chunk_size=EXPORT_CHUNK_SIZE)


def csv_export_response(*, queryset: QuerySet, spec: ExportSpec, stamp: str) -> StreamingHttpResponse:
    """The export as a streamed `text/csv` attachment named `<spec.name>-<stamp>.csv`."""
    response = StreamingHttpResponse(csv_lines(header=spec.header, rows=export_rows(queryset=queryset, spec=spec)),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{spec.name}-{stamp}.csv"'
    return response
