"""Streamed CSV: cells a spreadsheet would run are defused, numbers stay numbers, and rows come from a
server-side cursor chunk by chunk."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.exports import EXPORT_CHUNK_SIZE, ExportSpec, csv_cell, csv_export_response, csv_lines


@pytest.mark.parametrize(("value", "cell"), [
    (None, ""), (-1250, -1250), (True, "true"), (Decimal("0.100000"), Decimal("0.100000")),
    (datetime(2026, 3, 1, 9, tzinfo=UTC), "2026-03-01T09:00:00+00:00"), ({"b": 1, "a": [2]}, '{"a": [2], "b": 1}'),
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-2", "'-2"), ("@sum", "'@sum"),
    ("plain, with comma", "plain, with comma"),
])
def test_cells_are_written_safely(value, cell):
    assert csv_cell(value) == cell


def test_numbers_stay_numbers_and_keep_their_digits_in_the_file():
    text = "".join(csv_lines(header=["n", "d"], rows=[[-1250, Decimal("0.100000")]]))
    assert text.splitlines()[1] == "-1250,0.100000"


def test_lines_parse_back_as_the_rows():
    text = "".join(csv_lines(header=["a", "b"], rows=[[1, 'say "hi", then\nleave'], [None, -5]]))
    assert list(csv.reader(io.StringIO(text))) == [["a", "b"], ["1", 'say "hi", then\nleave'], ["", "-5"]]


@pytest.mark.django_db(transaction=True)
def test_the_response_streams_from_a_server_side_cursor_in_chunks():
    # The kernel imports no app: Django's own content types stand in for any table.
    spec = ExportSpec(name="types", columns=(("id", "id"), ("model", "model")))
    response = csv_export_response(queryset=ContentType.objects.order_by("pk"), spec=spec, stamp="x")
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="types-x.csv"'
    with CaptureQueriesContext(connection) as queries:
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["id", "model"] and len(rows) == ContentType.objects.count() + 1 > 10
    assert len(queries) == 1  # one SELECT, read through a cursor EXPORT_CHUNK_SIZE rows at a time
    # QuerySet.iterator(chunk_size) reads through a named (server-side) cursor unless this is set.
    assert not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS") and EXPORT_CHUNK_SIZE == 2000
