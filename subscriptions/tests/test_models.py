"""The database itself refuses rows that must never exist (not only validation)."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from subscriptions.models import Customer, Plan, Subscription, SubscriptionStatus
from subscriptions.tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def refused(build):
    with pytest.raises(IntegrityError), transaction.atomic():
        build()


@pytest.mark.parametrize("fields", [
    {"amount": -1},
    {"interval_count": 0},
    {"credits_per_period": -5},
    {"interval": "week"},
    {"currency": "usd"},
    {"currency": "US"},
])
def test_plan_refuses_invalid_values(fields):
    refused(lambda: PlanFactory(**fields))


def test_plan_code_is_unique():
    PlanFactory(code="pro")

    refused(lambda: PlanFactory(code="pro"))


def test_customer_refuses_a_currency_that_is_not_iso_and_duplicate_external_ids():
    CustomerFactory(external_id="ext-1")

    refused(lambda: CustomerFactory(currency="us1"))
    refused(lambda: CustomerFactory(external_id="ext-1"))


def test_customers_without_external_ids_do_not_collide():
    first = CustomerFactory(external_id=None)
    second = CustomerFactory(external_id=None)

    stored = Customer.objects.filter(pk__in=[first.pk, second.pk], external_id=None)
    assert stored.count() == 2


def test_subscription_refuses_an_invalid_status_even_by_raw_update():
    subscription = SubscriptionFactory()

    refused(lambda: Subscription.objects.filter(pk=subscription.pk).update(status="lapsed"))


def test_subscription_period_must_end_after_it_starts():
    subscription = SubscriptionFactory()

    refused(lambda: Subscription.objects.filter(pk=subscription.pk).update(
        current_period_end=subscription.current_period_start))
    refused(lambda: Subscription.objects.filter(pk=subscription.pk).update(
        current_period_end=subscription.current_period_start - timedelta(days=1)))


@pytest.mark.parametrize("second_status", [
    SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.INCOMPLETE,
    SubscriptionStatus.PAST_DUE, SubscriptionStatus.PAUSED,
])
def test_a_customer_has_at_most_one_live_subscription(second_status):
    first = SubscriptionFactory(status=SubscriptionStatus.ACTIVE)

    refused(lambda: SubscriptionFactory(customer=first.customer, status=second_status))


def test_canceled_subscriptions_do_not_count_as_live():
    first = SubscriptionFactory(status=SubscriptionStatus.CANCELED)
    SubscriptionFactory(customer=first.customer, status=SubscriptionStatus.CANCELED)

    live = SubscriptionFactory(customer=first.customer, status=SubscriptionStatus.ACTIVE)

    assert live.is_live
    # Reviving a canceled one next to the live one is refused too.
    refused(lambda: Subscription.objects.filter(pk=first.pk).update(status=SubscriptionStatus.ACTIVE))


def test_plan_feature_helpers():
    plan = PlanFactory(amount=0, features=["dashboard"])

    assert plan.is_free
    assert plan.has_feature("dashboard")
    assert not plan.has_feature("api_access")
    assert Plan.objects.get(pk=plan.pk).features == ["dashboard"]
