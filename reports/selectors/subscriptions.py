"""Subscription counts at an instant, as the subscription audit trail (`SubscriptionEvent`) defines them.

A subscription's status at an instant is the `to_status` of its newest audit row written by then (a
subscription with none did not exist yet); its plan is the `from_plan` of the first plan change after
the instant, or its plan today when it has not changed since. They are read from the count rollups
(subscriptions.count_models, written with the audit rows): the +1/-1 deltas of every month before the
instant's, then those of the instants from its month's start up to it."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Sum

from reports.selectors.periods import month_start
from subscriptions.models import (
    LIVE_SUBSCRIPTION_STATUSES,
    Plan,
    SubscriptionCountChange,
    SubscriptionCountMonth,
    SubscriptionStatus,
)


@dataclass(frozen=True)
class PlanCount:
    plan: str
    currency: str
    count: int


@dataclass(frozen=True)
class SubscriptionCounts:
    at: datetime
    # Every status, zero included.
    by_status: dict[str, int]
    # Live subscriptions (not canceled) per plan.
    by_plan: list[PlanCount]


def subscription_counts_at(*, at: datetime) -> dict[tuple[str, int], int]:
    """{(status, plan id): subscriptions} at `at`. One query."""
    months = (SubscriptionCountMonth.objects.filter(month__lt=month_start(at))
              .values_list("status", "plan_id").annotate(n=Sum("delta")).order_by())
    instants = (SubscriptionCountChange.objects.filter(at__gte=month_start(at), at__lte=at)
                .values_list("status", "plan_id").annotate(n=Sum("delta")).order_by())
    counts: dict[tuple[str, int], int] = {}
    for status, plan_id, n in months.union(instants, all=True):
        counts[(status, plan_id)] = counts.get((status, plan_id), 0) + n
    return counts


def report_subscriptions(*, at: datetime, currency: str | None) -> SubscriptionCounts:
    """How many subscriptions were in each status, and on each plan, at `at`. Two queries (the counts, the
    plans)."""
    counts = subscription_counts_at(at=at)
    plans = {p.pk: p for p in Plan.objects.all()}
    by_status = dict.fromkeys(SubscriptionStatus.values, 0)
    by_plan: dict[int, int] = {}
    for (status, plan_id), n in counts.items():
        if not n or (currency and plans[plan_id].currency != currency):
            continue
        by_status[status] += n
        if status in LIVE_SUBSCRIPTION_STATUSES:
            by_plan[plan_id] = by_plan.get(plan_id, 0) + n
    ordered = sorted(by_plan, key=lambda pk: (plans[pk].sort_order, plans[pk].amount, plans[pk].code))
    return SubscriptionCounts(at=at, by_status=by_status, by_plan=[
        PlanCount(plan=plans[pk].code, currency=plans[pk].currency, count=by_plan[pk]) for pk in ordered])
