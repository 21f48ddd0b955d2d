"""The run's last step: usage of subscriptions a merchant of record bills (`Subscription.billed_by`),
reported to that rail through the provider contract (`usage_reports_send`), which bills it itself.

Each batch reads its subscriptions and aggregates their current period's usage in one query, then asks
the rail with no transaction open and no row locked. A report is the period's whole quantity so far, so
reporting it again (a retried or repeated run, two workers) changes nothing at the provider. A rail that
fails is reported in the counts and asked again by the next run; it never stops the run."""

import logging
import math
from datetime import datetime

from core.exceptions import BillingError
from payments.billing.common import StepCounts
from payments.models import ProviderSubscription
from payments.providers import Capability, UsageReport, providers_with
from subscriptions.models import Subscription, SubscriptionStatus
from usage.models import MeterPrice
from usage.selectors import UsageWindow, usage_aggregate_many

logger = logging.getLogger(__name__)

PROVIDER_USAGE = "provider_usage"
# Statuses whose usage the provider bills (paused and canceled ones bill nothing).
_REPORTED_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE, SubscriptionStatus.TRIALING)


def mirrored_subscription_ids(*, provider: str) -> list[int]:
    """The step's work list for one rail: its live mirrored subscriptions on a metered plan, by key."""
    metered_plans = MeterPrice.objects.values("plan_id")
    return list(Subscription.objects.filter(billed_by=provider, status__in=_REPORTED_STATUSES,
                                            plan_id__in=metered_plans).order_by("pk").values_list("pk", flat=True))


def usage_reports_build(*, subscription_ids: list[int], as_of: datetime) -> list[UsageReport]:
    """One report per subscription: its plan's metered usage over [period start, min(period end, as_of))."""
    subscriptions = list(Subscription.objects.filter(pk__in=subscription_ids).order_by("pk"))
    references = dict(ProviderSubscription.objects.filter(subscription_id__in=subscription_ids)
                      .values_list("subscription_id", "provider_subscription_id"))
    meters: dict[int, list[int]] = {}
    for plan_id, meter_id in MeterPrice.objects.filter(plan_id__in={s.plan_id for s in subscriptions}) \
            .values_list("plan_id", "meter_id"):
        meters.setdefault(plan_id, []).append(meter_id)
    usage = usage_aggregate_many(
        windows=[UsageWindow(customer_id=s.customer_id, start=s.current_period_start,
                             end=max(s.current_period_start, min(s.current_period_end, as_of))) for s in subscriptions],
        meter_ids=[meter for ids in meters.values() for meter in ids])
    # Lemon Squeezy counts whole units: a fractional total is rounded up (never under-reported).
    return [UsageReport(subscription_id=s.pk, reference=references.get(s.pk, ""),
                        quantity=math.ceil(sum(usage.get((s.customer_id, m), 0) for m in meters.get(s.plan_id, []))))
            for s in subscriptions if references.get(s.pk)]


def provider_usage_report(*, as_of: datetime, batch_size: int) -> StepCounts:
    counts = StepCounts()
    for rail in providers_with(Capability.MERCHANT_OF_RECORD):
        ids = mirrored_subscription_ids(provider=rail.code)
        for position in range(0, len(ids), batch_size):
            reports = usage_reports_build(subscription_ids=ids[position:position + batch_size], as_of=as_of)
            try:
                counts.add("usage_reported", rail.usage_reports_send(reports))
            except BillingError as exc:
                logger.warning("%s usage reports failed: %s", rail.code, exc.message)
                counts.add("usage_report_failed", len(reports))
    return counts
