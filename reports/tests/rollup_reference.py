"""The credits and subscriptions-at-a-date reports as they were computed on every call before their rollups
(straight from the ledger and the audit trail, by the definitions of docs/reports.md): the reference the
rollup-backed selectors must equal."""

from datetime import UTC, datetime

from django.db.models import BigIntegerField, Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncMonth

from credits.models import CreditLedgerEntry
from reports.selectors.credits import _OUTFLOWS, CREDIT_COLUMNS, CreditMonth
from reports.selectors.periods import month_start, month_windows
from reports.selectors.subscriptions import PlanCount, SubscriptionCounts
from subscriptions.models import (
    LIVE_SUBSCRIPTION_STATUSES,
    Plan,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)


def report_credits_reference(*, period_start: datetime, period_end: datetime,
                             currency: str | None) -> list[CreditMonth]:
    """The credits report as it was computed on every call before the rollup: from every ledger row."""
    entries = CreditLedgerEntry.objects.filter(Q(customer__currency=currency) if currency else Q())
    opening = entries.filter(created_at__lt=period_start).aggregate(total=Coalesce(Sum("amount"), 0))["total"]
    sums = {f"c_{name}": Coalesce(Sum("amount", filter=q), 0) for name, q in CREDIT_COLUMNS.items()}
    monthly = {row["month"]: row for row in
               entries.filter(created_at__gte=period_start, created_at__lt=period_end)
               .annotate(month=TruncMonth("created_at", tzinfo=UTC)).values("month").annotate(**sums).order_by()}
    outstanding, months = opening, []
    for start, end in month_windows(start=period_start, end=period_end):
        row = monthly.get(month_start(start), {})
        figures = {name: row.get(f"c_{name}", 0) for name in CREDIT_COLUMNS}
        outstanding += sum(figures.values())
        months.append(CreditMonth(start=start, end=end, outstanding=outstanding,
                                  **{n: -v if n in _OUTFLOWS else v for n, v in figures.items()}))
    return months


def report_subscriptions_reference(*, at: datetime, currency: str | None) -> SubscriptionCounts:
    """The report as it was computed on every call before the rollups: from every audit row."""
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
