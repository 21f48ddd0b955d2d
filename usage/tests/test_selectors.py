from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from subscriptions.tests.factories import CustomerFactory
from usage.models import Aggregation, UsageEvent
from usage.selectors import UsageWindow, usage_aggregate, usage_aggregate_many
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


def test_aggregate_many_ignores_other_meters_and_empty_input():
    meter, other = MeterFactory(), MeterFactory()
    customer = CustomerFactory(user=None)
    UsageEvent.objects.create(customer=customer, meter=other, quantity=5, occurred_at=T, idempotency_key="a")
    window = UsageWindow(customer_id=customer.pk, start=T, end=T + timedelta(days=1))
    assert usage_aggregate_many(windows=[window], meter_ids=[meter.pk]) == {}
    assert usage_aggregate_many(windows=[], meter_ids=[meter.pk]) == {}
