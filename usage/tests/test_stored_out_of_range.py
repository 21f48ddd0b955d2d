"""A timestamp stored before the doors refused it (1 BC, year 10000) never breaks a page that reads it."""

import pytest
from django.db import connection

from billing_project.tests.admin_helpers import change_url, changelist_url
from billing_project.tests.api_support import api_customer, staff_client
from usage.models import UsageEvent
from usage.tests.factories import MeterFactory

# What a year-1 date with a positive offset became in UTC, what 9999-12-31 with a negative one became,
# and the earliest instant Python holds.
STORED = ["0001-12-31 23:00:00+00 BC", "10000-01-01 04:00:00+00", "0001-01-01 00:00:00+00"]


def _insert_event(occurred_at: str) -> UsageEvent:
    caller = api_customer()
    meter = MeterFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO usage_usageevent (customer_id, meter_id, quantity, occurred_at, idempotency_key, properties, "
            "received_at) VALUES (%s, %s, 1, %s::timestamptz, 'stored-long-ago', '{}', now()) RETURNING id",
            [caller.customer.pk, meter.pk, occurred_at])
        return UsageEvent.objects.get(pk=cursor.fetchone()[0])


@pytest.mark.django_db
@pytest.mark.parametrize("occurred_at", STORED)
def test_the_staff_usage_list_and_detail_render(occurred_at):
    event = _insert_event(occurred_at)
    staff = staff_client()
    for query in ({}, {"ordering": "occurred_at"}, {"ordering": "-occurred_at"}):
        response = staff.get("/api/v1/usage/events/", query)
        assert response.status_code == 200, response.content
        assert [row["id"] for row in response.json()["results"]] == [event.pk]
    assert staff.get(f"/api/v1/usage/events/{event.pk}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("occurred_at", STORED)
def test_the_admin_changelist_and_change_page_render(admin_client, occurred_at):
    event = _insert_event(occurred_at)
    for url in (changelist_url(UsageEvent), f"{changelist_url(UsageEvent)}?occurred_at__year=1", change_url(event)):
        assert admin_client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_out_of_range_values_read_as_the_nearest_instant_python_has():
    early, late = _insert_event(STORED[0]), _insert_event(STORED[1])
    assert (early.occurred_at.year, late.occurred_at.year) == (1, 9999)


@pytest.mark.django_db
def test_ordinary_timestamps_read_back_exactly_as_the_general_parser_reads_them():
    """The loader's shortcut for ISO text in UTC gives the instants, and the UTC zone object, of the
    general path."""
    from datetime import UTC, datetime

    values = ["2026-02-28 12:00:00+00", "2026-02-28 12:00:00.5+00", "2026-02-28 12:00:00.123456+00",
              "0999-01-01 00:00:00+00", "2026-03-01 05:30:00+05:30", "9999-12-31 23:59:59.999999+00"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT v::timestamptz, v::timestamptz::text FROM unnest(%s::text[]) AS v", [values])
        rows = cursor.fetchall()
    for (loaded, text), given in zip(rows, values, strict=True):
        assert loaded.tzinfo is UTC
        assert loaded == datetime.fromisoformat(given)
        assert text.endswith("+00")
