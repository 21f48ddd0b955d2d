"""Reads of metered usage: period aggregation as each meter defines it."""

from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Max, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform

from subscriptions.models import Customer
from usage.models import Aggregation, Meter, UsageEvent


def usage_events_in_period(*, customer: Customer, meter: Meter, start: datetime, end: datetime) -> QuerySet:
    return UsageEvent.objects.filter(customer=customer, meter=meter, occurred_at__gte=start, occurred_at__lt=end)


def usage_aggregate(*, customer: Customer, meter: Meter, start: datetime, end: datetime) -> Decimal:
    """The meter's aggregation over [start, end): one query, served by the (customer, meter, time) index."""
    events = usage_events_in_period(customer=customer, meter=meter, start=start, end=end)
    if meter.aggregation == Aggregation.SUM:
        value = events.aggregate(v=Sum("quantity"))["v"]
    elif meter.aggregation == Aggregation.COUNT:
        value = events.aggregate(v=Count("id"))["v"]
    elif meter.aggregation == Aggregation.MAX:
        value = events.aggregate(v=Max("quantity"))["v"]
    else:
        value = (events.annotate(unique_value=KeyTextTransform(meter.unique_property, "properties"))
                 .aggregate(v=Count("unique_value", distinct=True))["v"])
    return Decimal(value or 0)


def meter_list(*, include_inactive: bool = False) -> QuerySet[Meter]:
    meters = Meter.objects.all()
    return meters if include_inactive else meters.filter(is_active=True)
