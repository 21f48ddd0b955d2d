"""The database refuses usage rows that must never exist."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from subscriptions.tests.factories import CustomerFactory, PlanFactory
from usage.models import MeterPrice, UsageEvent
from usage.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db


def refused(build):
    with pytest.raises(IntegrityError), transaction.atomic():
        build()


def event(customer, meter, **fields):
    values = dict(customer=customer, meter=meter, quantity=Decimal(1), occurred_at=timezone.now(),
                  idempotency_key="evt-1")
    values.update(fields)
    return UsageEvent.objects.create(**values)


def test_usage_idempotency_key_is_unique_per_customer():
    meter, first, second = MeterFactory(), CustomerFactory(), CustomerFactory()
    event(first, meter)

    refused(lambda: event(first, meter))
    refused(lambda: event(first, MeterFactory()))  # per customer, whatever the meter
    event(second, meter)


def test_usage_quantity_cannot_be_negative():
    refused(lambda: event(CustomerFactory(), MeterFactory(), quantity=Decimal("-0.5")))


@pytest.mark.parametrize("fields", [
    {"aggregation": "median"},
    {"aggregation": "unique_count", "unique_property": ""},
    {"credits_per_unit": Decimal("-1")},
])
def test_meter_refuses_invalid_definitions(fields):
    refused(lambda: MeterFactory(**fields))


def test_meter_code_is_unique():
    MeterFactory(code="api_calls")

    refused(lambda: MeterFactory(code="api_calls"))


def test_meter_price_is_one_per_plan_and_meter_and_never_negative():
    plan, meter = PlanFactory(), MeterFactory()
    MeterPrice.objects.create(plan=plan, meter=meter, unit_amount=Decimal("0.05"), included_units=Decimal(100))

    refused(lambda: MeterPrice.objects.create(plan=plan, meter=meter, unit_amount=Decimal(1)))
    refused(lambda: MeterPrice.objects.create(plan=plan, meter=MeterFactory(), unit_amount=Decimal("-0.01")))
    refused(lambda: MeterPrice.objects.create(plan=plan, meter=MeterFactory(), unit_amount=Decimal(1),
                                              included_units=Decimal(-1)))
