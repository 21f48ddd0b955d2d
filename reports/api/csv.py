"""`?format=csv` (or `Accept: text/csv`) on every report endpoint: the same figures as the JSON answer,
one CSV row per row of the answer, streamed with the exports' writer (core.exports: formula-looking text
neutralised, numbers kept numbers) as an attachment named after the report and its range.

The columns are the JSON row's fields, nested objects flattened into their own fields (an MRR point's
`movements` become `new`, `expansion`, ...), so a CSV column means exactly what the JSON field of that name
means. Errors stay JSON, as everywhere in the API."""

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

from django.http import StreamingHttpResponse
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer

from core.exports import csv_lines


class CsvRenderer(BaseRenderer):
    """Declares `text/csv` to content negotiation (and `?format=csv`); the report views answer it with a
    streamed response, so this renderer is only reached for a body they did not stream."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        rows = data if isinstance(data, list) else [data]
        fields = sorted({key for row in rows if isinstance(row, dict) for key in row})
        return "".join(csv_lines(header=fields, rows=([row.get(f) for f in fields] for row in rows))).encode()


def _flat_fields(serializer: serializers.Serializer, prefix: str = "") -> list[tuple[str, list[str], bool]]:
    """(column name, path in a row, is a decimal) per leaf field, nested serializers flattened."""
    columns = []
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.Serializer):
            columns += [(column, [name, *path], decimal) for column, path, decimal in _flat_fields(field)]
        else:
            columns.append((prefix + name, [name], isinstance(field, serializers.DecimalField)))
    return columns


def _cell(row: dict, path: list[str], decimal: bool):
    value = row
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    # The JSON answer carries decimals as strings; the CSV writes them as numbers.
    return Decimal(value) if decimal and value is not None else value


def report_table(*, row_serializer: serializers.Serializer, rows: list[dict]) -> tuple[list[str], Iterator[list]]:
    columns = _flat_fields(row_serializer)
    return ([name for name, _, _ in columns],
            ([_cell(row, path, decimal) for _, path, decimal in columns] for row in rows))


def csv_report_response(*, name: str, row_serializer: serializers.Serializer, rows: list[dict],
                        start: datetime | None, end: datetime) -> StreamingHttpResponse:
    """The report as a streamed `text/csv` attachment named `report-<name>-<from>-<to>.csv`."""
    header, lines = report_table(row_serializer=row_serializer, rows=rows)
    response = StreamingHttpResponse(csv_lines(header=header, rows=lines), content_type="text/csv; charset=utf-8")
    span = "-".join(instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") for instant in (start, end) if instant)
    response["Content-Disposition"] = f'attachment; filename="report-{name}-{span}.csv"'
    return response
