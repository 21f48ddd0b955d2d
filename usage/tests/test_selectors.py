from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from subscriptions.tests.factories import CustomerFactory
from usage.models import Aggregation, UsageEvent
from usage.selectors import meter_list, usage_aggregate
from usage.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

START = datetime(2025, 4, 1, tzinfo=UTC)
END = datetime(2025, 5, 1, tzinfo=UTC)


def record(customer, meter, key, quantity, at, **properties):
    UsageEvent.objects.create(customer=customer, meter=meter, idempotency_key=key, quantity=Decimal(quantity),
                              occurred_at=at, properties=properties)


@pytest.mark.parametrize(("aggregation", "expected"), [
    (Aggregation.SUM, Decimal("7.5")),
    (Aggregation.COUNT, Decimal(4)),
    (Aggregation.MAX, Decimal(4)),
    (Aggregation.UNIQUE_COUNT, Decimal(2)),
])
def test_aggregate_over_a_half_open_period(aggregation, expected):
    customer, other = CustomerFactory(), CustomerFactory()
    meter = MeterFactory(aggregation=aggregation, unique_property="user_id")
    record(customer, meter, "a", "1.5", START, user_id="u1")                   # first instant: in
    record(customer, meter, "b", "2", START + timedelta(days=3), user_id="u2")
    record(customer, meter, "c", "4", END - timedelta(microseconds=1), user_id="u1")
    record(customer, meter, "d", "0", START + timedelta(days=9), user_id="u2")
    record(customer, meter, "e", "100", END, user_id="u3")                     # end instant: next period
    record(customer, meter, "f", "100", START - timedelta(seconds=1), user_id="u4")
    record(other, meter, "a", "100", START + timedelta(days=1), user_id="u5")  # another customer
    record(customer, MeterFactory(), "g", "100", START + timedelta(days=1))     # another meter

    assert usage_aggregate(customer=customer, meter=meter, start=START, end=END) == expected


def test_aggregate_of_no_events_is_zero():
    meter = MeterFactory(aggregation=Aggregation.MAX)

    assert usage_aggregate(customer=CustomerFactory(), meter=meter, start=START, end=END) == Decimal(0)


def test_aggregate_is_one_query(django_assert_num_queries):
    customer, meter = CustomerFactory(), MeterFactory(aggregation=Aggregation.SUM)
    for n in range(5):
        record(customer, meter, f"k{n}", "1", START + timedelta(hours=n))

    with django_assert_num_queries(1):
        assert usage_aggregate(customer=customer, meter=meter, start=START, end=END) == Decimal(5)


def test_meter_list_hides_inactive_meters_unless_asked():
    active, inactive = MeterFactory(), MeterFactory(is_active=False)

    assert list(meter_list()) == [active]
    assert set(meter_list(include_inactive=True)) == {active, inactive}
