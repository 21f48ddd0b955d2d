"""Subscription counts at an instant, read from the subscription audit trail (`SubscriptionEvent`).

A subscription's status at an instant is the `to_status` of its newest audit row written by then (a
subscription with none did not exist yet); its plan is the `from_plan` of the first plan change after
the instant, or its plan today when it has not changed since."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import BigIntegerField, Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce

from subscriptions.models import (
    LIVE_SUBSCRIPTION_STATUSES,
    Plan,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
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


def report_subscriptions(*, at: datetime, currency: str | None) -> SubscriptionCounts:
    """How many subscriptions were in each status, and on each plan, at `at`. One query, plus the plans."""
    status_then = (SubscriptionEvent.objects.filter(subscription=OuterRef("pk"), created_at__lte=at)
                   .exclude(to_status="").order_by("-created_at", "-id").values("to_status")[:1])
    plan_then = (SubscriptionEvent.objects.filter(subscription=OuterRef("pk"), created_at__gt=at,
                                                  kind=SubscriptionEventKind.PLAN_CHANGED)
                 .order_by("created_at", "id").values("from_plan")[:1])
    rows = (Subscription.objects.annotate(status_then=Subquery(status_then),
                                          plan_then=Coalesce(Subquery(plan_then), F("plan_id"),
                                                             output_field=BigIntegerField()))
            .filter(status_then__isnull=False).values_list("status_then", "plan_then")
            .annotate(n=Count("id")).order_by())
    plans = {p.pk: p for p in Plan.objects.all()}
    by_status = dict.fromkeys(SubscriptionStatus.values, 0)
    by_plan: dict[int, int] = {}
    for status, plan_id, n in rows:
        if currency and plans[plan_id].currency != currency:
            continue
        by_status[status] += n
        if status in LIVE_SUBSCRIPTION_STATUSES:
            by_plan[plan_id] = by_plan.get(plan_id, 0) + n
    ordered = sorted(by_plan, key=lambda pk: (plans[pk].sort_order, plans[pk].amount, plans[pk].code))
    return SubscriptionCounts(at=at, by_status=by_status, by_plan=[
        PlanCount(plan=plans[pk].code, currency=plans[pk].currency, count=by_plan[pk]) for pk in ordered])
