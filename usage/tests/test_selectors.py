from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from subscriptions.tests.factories import CustomerFactory
from usage.models import Aggregation, UsageEvent
from usage.selectors import (
    UsageWindow,
    meter_list,
    usage_aggregate,
    usage_aggregate_many,
    usage_aggregate_windows,
)
from usage.tests.factories import MeterFactory

T = datetime(2026, 3, 1, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def test_aggregate_many_equals_usage_aggregate_for_every_aggregation_and_window(django_assert_num_queries):
    meters = [MeterFactory(aggregation=Aggregation.SUM), MeterFactory(aggregation=Aggregation.COUNT),
              MeterFactory(aggregation=Aggregation.MAX),
              MeterFactory(aggregation=Aggregation.UNIQUE_COUNT, unique_property="user")]
    customers = [CustomerFactory(user=None) for _ in range(3)]
    for c_index, customer in enumerate(customers):
        for meter in meters:
            for i in range(5):
                UsageEvent.objects.create(customer=customer, meter=meter, quantity=Decimal(i) + Decimal("0.25"),
                                          occurred_at=T + timedelta(days=i * 3 + c_index),
                                          idempotency_key=f"{meter.pk}-{i}", properties={"user": f"u{i % 2}"})
    windows = [UsageWindow(customer_id=c.pk, start=T + timedelta(days=i), end=T + timedelta(days=8 + i))
               for i, c in enumerate(customers)]
    with django_assert_num_queries(1):
        many = usage_aggregate_many(windows=windows, meter_ids=[m.pk for m in meters])
    for window, customer in zip(windows, customers, strict=True):
        for meter in meters:
            one = usage_aggregate(customer=customer, meter=meter, start=window.start, end=window.end)
            assert many.get((customer.pk, meter.pk), Decimal(0)) == one


def test_aggregate_windows_answers_each_window_of_a_customer_on_its_own(django_assert_num_queries):
    """The forecast reads several periods of one subscription at once: windows may share a customer."""
    meters = [MeterFactory(aggregation=Aggregation.SUM),
              MeterFactory(aggregation=Aggregation.UNIQUE_COUNT, unique_property="user")]
    customers = [CustomerFactory(user=None) for _ in range(2)]
    for c_index, customer in enumerate(customers):
        for meter in meters:
            for i in range(6):
                UsageEvent.objects.create(customer=customer, meter=meter, quantity=Decimal(i + c_index),
                                          occurred_at=T + timedelta(days=i * 5), idempotency_key=f"{meter.pk}-{i}",
                                          properties={"user": f"u{i % 3}"})
    windows = [UsageWindow(customer_id=customers[0].pk, start=T, end=T + timedelta(days=10)),
               UsageWindow(customer_id=customers[0].pk, start=T + timedelta(days=10), end=T + timedelta(days=30)),
               UsageWindow(customer_id=customers[1].pk, start=T, end=T + timedelta(days=30)),
               UsageWindow(customer_id=customers[1].pk, start=T + timedelta(days=40), end=T + timedelta(days=50))]
    with django_assert_num_queries(1):
        found = usage_aggregate_windows(windows=windows, meter_ids=[m.pk for m in meters])
    assert found[3] == {}
    for window, values in zip(windows, found, strict=True):
        customer = customers[0] if window.customer_id == customers[0].pk else customers[1]
        for meter in meters:
            one = usage_aggregate(customer=customer, meter=meter, start=window.start, end=window.end)
            assert values.get(meter.pk, Decimal(0)) == one
    assert usage_aggregate_windows(windows=[], meter_ids=[meters[0].pk]) == []
    assert usage_aggregate_windows(windows=windows[:1], meter_ids=[]) == [{}]


def test_aggregate_many_ignores_other_meters_and_empty_input():
    meter, other = MeterFactory(), MeterFactory()
    customer = CustomerFactory(user=None)
    UsageEvent.objects.create(customer=customer, meter=other, quantity=5, occurred_at=T, idempotency_key="a")
    window = UsageWindow(customer_id=customer.pk, start=T, end=T + timedelta(days=1))
    assert usage_aggregate_many(windows=[window], meter_ids=[meter.pk]) == {}
    assert usage_aggregate_many(windows=[], meter_ids=[meter.pk]) == {}


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
