import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from subscriptions.models import BillingInterval, Customer, Plan, Subscription, SubscriptionStatus
from subscriptions.periods import period_boundary


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pass-word-123")


class StaffUserFactory(UserFactory):
    is_staff = True
    is_superuser = True


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    currency = "USD"


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.LazyAttribute(lambda p: p.code.title())
    amount = 999
    currency = "USD"
    interval = BillingInterval.MONTH
    interval_count = 1
    credits_per_period = 100
    rate_limit_per_minute = 20
    rate_limit_per_hour = 500
    api_calls_per_day = 5000
    features = factory.LazyFunction(lambda: ["api_access", "live_updates"])


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(PlanFactory)
    status = SubscriptionStatus.ACTIVE
    billing_cycle_anchor = factory.LazyFunction(timezone.now)
    current_period_start = factory.LazyAttribute(lambda s: s.billing_cycle_anchor)
    current_period_end = factory.LazyAttribute(
        lambda s: period_boundary(anchor=s.billing_cycle_anchor, interval=s.plan.interval,
                                  interval_count=s.plan.interval_count, periods=1)
    )
