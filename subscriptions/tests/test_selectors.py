import pytest
from django.contrib.auth.models import AnonymousUser

from subscriptions.models import SubscriptionStatus
from subscriptions.selectors import customer_for_user, plan_list, subscription_list, subscription_live_for_customer
from subscriptions.tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_customer_for_user():
    customer = CustomerFactory()

    assert customer_for_user(user=customer.user) == customer
    assert customer_for_user(user=UserFactory()) is None
    assert customer_for_user(user=AnonymousUser()) is None
    assert customer_for_user(user=None) is None


def test_plan_list_hides_inactive_plans_unless_asked():
    active, inactive = PlanFactory(), PlanFactory(is_active=False)

    assert list(plan_list()) == [active]
    assert set(plan_list(include_inactive=True)) == {active, inactive}


def test_live_subscription_ignores_canceled_ones():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, status=SubscriptionStatus.CANCELED)
    assert subscription_live_for_customer(customer=customer) is None

    live = SubscriptionFactory(customer=customer, status=SubscriptionStatus.PAST_DUE)

    assert subscription_live_for_customer(customer=customer) == live
    assert subscription_list(customer=customer).count() == 2
    assert subscription_list(customer=CustomerFactory()).count() == 0
