"""The `usage` live topic: a customer's running totals per meter for its current billing period,
announced once per committed recording (one event or a whole batch)."""

from functools import partial

from django.db import transaction

from modules.topics import Topic, TopicQuery, topic_publish
from subscriptions.models import Customer
from subscriptions.selectors import subscription_live_for_customer
from usage.selectors import usage_summary

USAGE = "usage"


def usage_live_data(*, customer: Customer) -> dict | None:
    """The customer's current period and each active meter's value in it; None without a live
    subscription (no current period)."""
    subscription = subscription_live_for_customer(customer=customer)
    if subscription is None:
        return None
    start, end = subscription.current_period_start, subscription.current_period_end
    meters = usage_summary(customer_id=customer.pk, start=start, end=end)
    return {
        # One item per customer, so its id is the customer's.
        "id": customer.pk, "customer_id": customer.pk, "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        # Decimal values as strings, as the API sends them: no float rounding.
        "meters": [{"meter": m.meter.code, "unit": m.meter.unit, "value": str(m.value)} for m in meters],
    }


def _read(customer_id: int) -> tuple[dict, dict] | None:
    customer = Customer.objects.filter(pk=customer_id).first()
    data = usage_live_data(customer=customer) if customer is not None else None
    return (data, {"customer": customer_id}) if data is not None else None


def usage_recorded(*, customer_id: int) -> None:
    """Announce the customer's new totals once the transaction that recorded usage commits."""
    transaction.on_commit(partial(topic_publish, topic=USAGE, kind="updated", read=partial(_read, customer_id)))


def usage_snapshot(query: TopicQuery) -> tuple[list[dict], int]:
    """The totals of the subscribed customer, or of the customers staff named; staff subscribing to
    every customer get events only (computing every customer's totals is a report, not a snapshot)."""
    customer_ids = query.filters.values.get("customer")
    if not customer_ids:
        return [], 0
    items = [data for c in Customer.objects.filter(pk__in=customer_ids).order_by("-pk")
             if (data := usage_live_data(customer=c)) is not None]
    return items[:query.limit], len(items)


TOPICS = [
    Topic(name=USAGE, module="usage", view_permission="usage.view_usageevent", filters={}, snapshot=usage_snapshot),
]
