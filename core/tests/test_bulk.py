from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from core.bulk import pg_array

pytestmark = pytest.mark.django_db


def _read_back(literal: str, sql_type: str):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{sql_type}[]", [literal])
        return cursor.fetchone()[0]


def test_an_array_literal_reads_back_as_the_same_values_in_postgresql():
    texts = ['plain', 'with "quotes"', "back\\slash", "comma, {braces}", "", "NULL", "  spaced  ", None]
    instants = [datetime(2026, 2, 28, 12, 0, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC) + timedelta(microseconds=7)]

    assert _read_back(pg_array(texts), "text") == texts
    assert _read_back(pg_array([1, -2, 2**62, None]), "bigint") == [1, -2, 2**62, None]
    assert _read_back(pg_array(instants), "timestamptz") == instants
    assert _read_back(pg_array([Decimal("0.4"), Decimal("-12.000001")]), "numeric") == [Decimal("0.4"),
                                                                                         Decimal("-12.000001")]
    assert _read_back(pg_array([True, False]), "boolean") == [True, False]
    assert _read_back(pg_array([]), "bigint") == []


def test_arrays_of_one_type_read_back_the_same_as_mixed_ones():
    # Ids alone and timestamps alone take a shorter path than mixed or nullable arrays: same literal values.
    instants = [datetime(2026, 2, 28, 12, 0, tzinfo=UTC), datetime(2026, 3, 1, 8, 30, 5, 7, tzinfo=UTC)]

    assert _read_back(pg_array(iter([3, -1, 2**62])), "bigint") == [3, -1, 2**62]
    assert _read_back(pg_array(iter(instants)), "timestamptz") == instants
    assert _read_back(pg_array([*instants, None]), "timestamptz") == [*instants, None]
    assert pg_array([1, True]) == "{1,true}"


def test_an_array_literal_refuses_nested_values():
    with pytest.raises(TypeError):
        pg_array([[1, 2]])

