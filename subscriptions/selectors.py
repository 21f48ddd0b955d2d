"""Reads for customers, plans and subscriptions."""

from collections import defaultdict
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum

from core.money import round_minor
from subscriptions.models import (
    LIVE_SUBSCRIPTION_STATUSES,
    Customer,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from subscriptions.periods import months_per_period

# Subscriptions that bring money every month. Trialing and incomplete ones have not paid yet and
# paused ones are not billed, so counting them would overstate recurring revenue.
REVENUE_SUBSCRIPTION_STATUSES = [SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE]


def customer_for_user(*, user) -> Customer | None:
    if user is None or not user.is_authenticated:
        return None
    return Customer.objects.filter(user=user).first()


def plan_list(*, include_inactive: bool = False) -> QuerySet[Plan]:
    plans = Plan.objects.all()
    return plans if include_inactive else plans.filter(is_active=True)


def subscription_live_for_customer(*, customer: Customer) -> Subscription | None:
    """The customer's one live subscription (a database constraint allows at most one)."""
    return (Subscription.objects.select_related("plan")
            .filter(customer=customer, status__in=LIVE_SUBSCRIPTION_STATUSES).first())


def subscription_list(*, customer: Customer | None = None) -> QuerySet[Subscription]:
    subscriptions = Subscription.objects.select_related("customer", "plan", "scheduled_plan")
    return subscriptions if customer is None else subscriptions.filter(customer=customer)


def subscription_mrr_by_currency() -> dict[str, int]:
    """Monthly recurring revenue in minor units per currency, yearly and multi-month plans spread evenly
    over their months. One query: sums per (currency, interval, count), normalised here exactly in
    Decimal and rounded once per currency."""
    rows = (Subscription.objects.filter(status__in=REVENUE_SUBSCRIPTION_STATUSES)
            .values_list("plan__currency", "plan__interval", "plan__interval_count")
            .annotate(total=Sum("plan__amount")).order_by())
    monthly: dict[str, Decimal] = defaultdict(Decimal)
    for currency, interval, interval_count, total in rows:
        monthly[currency] += Decimal(total) / months_per_period(interval=interval, interval_count=interval_count)
    return {currency: round_minor(amount) for currency, amount in sorted(monthly.items())}


def subscription_counts_by_status() -> dict[str, int]:
    """How many subscriptions are in each status (every status present, zero included). One query."""
    counts = dict(Subscription.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {status: counts.get(status, 0) for status in SubscriptionStatus.values}
