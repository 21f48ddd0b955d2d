"""Reads for customers, plans and subscriptions."""

from django.db.models import QuerySet

from subscriptions.models import LIVE_SUBSCRIPTION_STATUSES, Customer, Plan, Subscription


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
