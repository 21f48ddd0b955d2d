"""Reads of metered usage: period aggregation as each meter defines it."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, F, Func, Max, QuerySet, Sum, TextField
from django.db.models.fields.json import KeyTextTransform

from subscriptions.models import Customer
from usage.models import Aggregation, Meter, MeterPrice, UsageEvent


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


def usage_event_list(*, customer: Customer | None = None) -> QuerySet[UsageEvent]:
    events = UsageEvent.objects.select_related("meter")
    return events if customer is None else events.filter(customer=customer)


@dataclass(frozen=True)
class MeterUsage:
    meter: Meter
    value: Decimal


def usage_summary(*, customer_id: int, start: datetime, end: datetime) -> list[MeterUsage]:
    """Every active meter's aggregation over [start, end) for one customer, in two queries whatever
    the number of meters: the events are grouped by meter and every aggregation computed at once
    (the distinct count reads each meter's own property with `properties ->> meter.unique_property`)."""
    meters = list(meter_list())
    unique_value = Func(F("properties"), F("meter__unique_property"), function="", arg_joiner=" ->> ",
                        template="(%(expressions)s)", output_field=TextField())
    rows = (UsageEvent.objects
            .filter(customer_id=customer_id, meter__in=meters, occurred_at__gte=start, occurred_at__lt=end)
            .values("meter_id")
            .annotate(total=Sum("quantity"), events=Count("id"), peak=Max("quantity"),
                      uniques=Count(unique_value, distinct=True))
            .order_by())
    by_meter = {row["meter_id"]: row for row in rows}
    pick = {Aggregation.SUM: "total", Aggregation.COUNT: "events", Aggregation.MAX: "peak",
            Aggregation.UNIQUE_COUNT: "uniques"}
    return [MeterUsage(meter=meter, value=Decimal(by_meter.get(meter.pk, {}).get(pick[meter.aggregation]) or 0))
            for meter in meters]


def meter_prices_for_plan(*, plan_id: int) -> QuerySet[MeterPrice]:
    return MeterPrice.objects.filter(plan_id=plan_id).select_related("meter").order_by("meter__code")
