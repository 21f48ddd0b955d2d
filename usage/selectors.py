"""Reads of metered usage: period aggregation as each meter defines it."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Avg, Count, F, Func, Max, Q, QuerySet, Sum, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, NullIf, TruncDay, TruncMonth

from core.bulk import pg_array
from core.exports import ExportSpec
from subscriptions.models import LIVE_SUBSCRIPTION_STATUSES, Customer, Subscription
from usage.models import TEXT_DIMENSIONS, Aggregation, Meter, MeterPrice, UsageAlert, UsageEvent, UsageThreshold


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


@dataclass(frozen=True)
class UsageWindow:
    customer_id: int
    start: datetime
    end: datetime


# One statement for a whole batch of customers, each over its own [start, end): the billing run must not
# issue a query per subscription. The CASE applies each meter's own aggregation to its group. Each window's
# events are read through the customer's index (LATERAL, kept apart by OFFSET 0): as a plain join the planner
# hashed the whole event table once per batch (57 ms of a 2,000-customer batch at 100,000 events, growing with
# the table).
_AGGREGATE_MANY_SQL = """
SELECT w.customer_id, m.id,
       CASE m.aggregation
           WHEN 'sum' THEN SUM(e.quantity)
           WHEN 'count' THEN COUNT(e.id)::numeric
           WHEN 'max' THEN MAX(e.quantity)
           ELSE COUNT(DISTINCT e.properties ->> m.unique_property)::numeric
       END
FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS w(customer_id, period_start, period_end)
CROSS JOIN LATERAL (
    SELECT id, meter_id, quantity, properties FROM usage_usageevent
    WHERE customer_id = w.customer_id AND occurred_at >= w.period_start AND occurred_at < w.period_end
      AND meter_id = ANY(%s::bigint[]) OFFSET 0) AS e
JOIN usage_meter m ON m.id = e.meter_id
GROUP BY w.customer_id, m.id
"""


def usage_aggregate_many(*, windows: list[UsageWindow], meter_ids: list[int]) -> dict[tuple[int, int], Decimal]:
    """{(customer_id, meter_id): aggregated quantity} for every window, in one query (PostgreSQL).

    Same semantics as `usage_aggregate`; a customer appears at most once in `windows`."""
    if not windows or not meter_ids:
        return {}
    if connection.vendor == "sqlite":
        return _sqlite_aggregate_many(windows=windows, meter_ids=meter_ids)
    with connection.cursor() as cursor:
        cursor.execute(_AGGREGATE_MANY_SQL, [
            pg_array(w.customer_id for w in windows), pg_array(w.start for w in windows),
            pg_array(w.end for w in windows), pg_array(sorted(set(meter_ids))),
        ])
        return {(customer_id, meter_id): Decimal(value or 0) for customer_id, meter_id, value in cursor.fetchall()}


def _sqlite_aggregate_many(*, windows: list[UsageWindow], meter_ids: list[int]) -> dict[tuple[int, int], Decimal]:
    """The embedded default's path (SQLite has no arrays to join against): one grouped query per window."""
    meters = {meter.pk: meter for meter in Meter.objects.filter(pk__in=set(meter_ids))}
    result = {}
    for window in windows:
        for meter_id, value in _meter_values(customer_id=window.customer_id, meters=meters,
                                             start=window.start, end=window.end).items():
            result[(window.customer_id, meter_id)] = value
    return result


def _meter_values(*, customer_id: int, meters: dict[int, Meter], start: datetime, end: datetime) -> dict[int, Decimal]:
    """{meter id: its aggregation} over [start, end) for the meters with events, in one query: the events
    are grouped by meter and every aggregation computed at once (the distinct count reads each meter's own
    property with `properties ->> meter.unique_property`, which PostgreSQL and SQLite both understand)."""
    # NULLIF: a meter that counts no property has '' there, which SQLite refuses as a JSON path.
    unique_value = Func(F("properties"), NullIf(F("meter__unique_property"), Value("")), function="",
                        arg_joiner=" ->> ", template="(%(expressions)s)", output_field=TextField())
    rows = (UsageEvent.objects
            .filter(customer_id=customer_id, meter__in=list(meters), occurred_at__gte=start, occurred_at__lt=end)
            .values("meter_id")
            .annotate(total=Sum("quantity"), events=Count("id"), peak=Max("quantity"),
                      uniques=Count(unique_value, distinct=True))
            .order_by())
    pick = {Aggregation.SUM: "total", Aggregation.COUNT: "events", Aggregation.MAX: "peak",
            Aggregation.UNIQUE_COUNT: "uniques"}
    return {row["meter_id"]: Decimal(row[pick[meters[row["meter_id"]].aggregation]] or 0) for row in rows}


def usage_event_list(*, customer: Customer | None = None) -> QuerySet[UsageEvent]:
    events = UsageEvent.objects.select_related("meter")
    return events if customer is None else events.filter(customer=customer)


@dataclass(frozen=True)
class MeterUsage:
    meter: Meter
    value: Decimal


def usage_summary(*, customer_id: int, start: datetime, end: datetime) -> list[MeterUsage]:
    """Every active meter's aggregation over [start, end) for one customer, in two queries whatever
    the number of meters (see `_meter_values`)."""
    meters = list(meter_list())
    values = _meter_values(customer_id=customer_id, meters={meter.pk: meter for meter in meters}, start=start, end=end)
    return [MeterUsage(meter=meter, value=values.get(meter.pk, Decimal(0))) for meter in meters]


def meter_prices_for_plan(*, plan_id: int) -> QuerySet[MeterPrice]:
    return MeterPrice.objects.filter(plan_id=plan_id).select_related("meter").order_by("meter__code")


# What usage totals can be grouped by: the meter, the customer, the day or month (UTC) it occurred, or
# any text dimension.
USAGE_GROUPS = ("meter", "customer", "day", "month", *TEXT_DIMENSIONS)


@dataclass(frozen=True)
class UsageTotals:
    # The customer's currency: costs are never added across currencies.
    currency: str
    # The group's value: meter code, customer id, ISO day or month (first day), or the dimension ('' for
    # events that did not carry it).
    key: str
    events: int
    quantity: Decimal
    tokens_used: int
    response_time_ms_total: int
    # Mean over the events that reported a response time; None when none did.
    response_time_ms_avg: Decimal | None
    # Decimal minor units of `currency`.
    cost: Decimal


def _usage_group_key(group_by: str):
    if group_by == "meter":
        return F("meter__code")
    if group_by == "customer":
        return Cast("customer_id", TextField())
    if group_by in ("day", "month"):
        return (TruncDay if group_by == "day" else TruncMonth)("occurred_at", tzinfo=UTC)
    return F(group_by)


def usage_totals(*, start: datetime, end: datetime, group_by: str, customer_id: int | None = None,
                 currency: str | None = None) -> list[UsageTotals]:
    """Events in [start, end) grouped by `group_by` (one of USAGE_GROUPS) per currency: how many, their
    quantity, tokens, response times and cost. One query."""
    events = UsageEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    if customer_id is not None:
        events = events.filter(customer_id=customer_id)
    if currency is not None:
        events = events.filter(customer__currency=currency)
    rows = (events.annotate(group_key=_usage_group_key(group_by))
            .values_list("customer__currency", "group_key")
            .annotate(n=Count("id"), quantity=Sum("quantity"), tokens=Sum("tokens_used"),
                      time_total=Sum("response_time_ms"), time_avg=Avg("response_time_ms"), cost=Sum("cost"))
            .order_by("customer__currency", "group_key"))
    return [UsageTotals(currency=row_currency, key=key.date().isoformat() if isinstance(key, datetime) else key,
                        events=n, quantity=quantity or Decimal(0), tokens_used=tokens or 0,
                        response_time_ms_total=time_total or 0,
                        response_time_ms_avg=None if time_avg is None else Decimal(time_avg).quantize(Decimal("0.01")),
                        cost=cost or Decimal(0))
            for row_currency, key, n, quantity, tokens, time_total, time_avg, cost in rows]


USAGE_EVENT_EXPORT = ExportSpec(name="usage-events", columns=(
    ("id", "id"), ("customer_id", "customer_id"), ("meter", "meter__code"), ("quantity", "quantity"),
    ("occurred_at", "occurred_at"), ("idempotency_key", "idempotency_key"), ("tokens_used", "tokens_used"),
    ("response_time_ms", "response_time_ms"), ("cost", "cost"), ("request_id", "request_id"),
    ("batch_id", "batch_id"), ("endpoint", "endpoint"), ("language_code", "language_code"), ("category", "category"),
    ("properties", "properties"), ("received_at", "received_at"),
))


def usage_threshold_list() -> QuerySet[UsageThreshold]:
    return UsageThreshold.objects.select_related("plan", "customer", "meter")


def usage_thresholds_visible_to(*, customer_id: int) -> QuerySet[UsageThreshold]:
    """What a customer may read: its own thresholds and those of the plans it is subscribed to now."""
    live_plans = Subscription.objects.filter(customer_id=customer_id, status__in=LIVE_SUBSCRIPTION_STATUSES
                                             ).values("plan_id")
    return usage_threshold_list().filter(Q(customer_id=customer_id) | Q(plan_id__in=live_plans))


def usage_alert_list() -> QuerySet[UsageAlert]:
    return UsageAlert.objects.select_related("threshold__meter", "customer")


# usage_aggregate_many's statement for windows that may share a customer: grouped by the window's position.
_AGGREGATE_WINDOWS_SQL = """
SELECT w.n, m.id,
       CASE m.aggregation
           WHEN 'sum' THEN SUM(e.quantity)
           WHEN 'count' THEN COUNT(e.id)::numeric
           WHEN 'max' THEN MAX(e.quantity)
           ELSE COUNT(DISTINCT e.properties ->> m.unique_property)::numeric
       END
FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY
     AS w(customer_id, period_start, period_end, n)
JOIN usage_usageevent e
  ON e.customer_id = w.customer_id AND e.occurred_at >= w.period_start AND e.occurred_at < w.period_end
JOIN usage_meter m ON m.id = e.meter_id
WHERE e.meter_id = ANY(%s::bigint[])
GROUP BY w.n, m.id
"""


def usage_aggregate_windows(*, windows: list[UsageWindow], meter_ids: list[int]) -> list[dict[int, Decimal]]:
    """{meter_id: aggregated quantity} for each window, in the windows' order, in one query (PostgreSQL).
    Same semantics as `usage_aggregate_many`, but a customer may appear in several windows (the forecast
    reads each period of a subscription several periods behind)."""
    found: list[dict[int, Decimal]] = [{} for _ in windows]
    if not windows or not meter_ids:
        return found
    if connection.vendor == "sqlite":
        meters = {meter.pk: meter for meter in Meter.objects.filter(pk__in=set(meter_ids))}
        return [_meter_values(customer_id=w.customer_id, meters=meters, start=w.start, end=w.end) for w in windows]
    with connection.cursor() as cursor:
        cursor.execute(_AGGREGATE_WINDOWS_SQL, [
            pg_array(w.customer_id for w in windows), pg_array(w.start for w in windows),
            pg_array(w.end for w in windows), pg_array(sorted(set(meter_ids))),
        ])
        for position, meter_id, value in cursor.fetchall():
            found[position - 1][meter_id] = Decimal(value or 0)
    return found
