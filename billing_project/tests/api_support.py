"""Builders for API tests: a signed-in customer on a plan, staff, and their API clients."""

from dataclasses import dataclass

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from subscriptions.models import Customer, Plan, Subscription
from subscriptions.tests.factories import CustomerFactory, PlanFactory, StaffUserFactory, SubscriptionFactory


@dataclass
class ApiCustomer:
    client: APIClient
    customer: Customer
    plan: Plan
    subscription: Subscription | None


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def api_customer(*, subscribed: bool = True, **plan_fields) -> ApiCustomer:
    """A customer with a token, subscribed (active) to a plan with api_access unless told otherwise."""
    plan_fields.setdefault("rate_limit_per_minute", 0)
    plan_fields.setdefault("rate_limit_per_hour", 0)
    plan_fields.setdefault("api_calls_per_day", 0)
    plan = PlanFactory(**plan_fields)
    customer = CustomerFactory()
    subscription = SubscriptionFactory(customer=customer, plan=plan) if subscribed else None
    return ApiCustomer(client=token_client(customer.user), customer=customer, plan=plan, subscription=subscription)


def staff_client() -> APIClient:
    return token_client(StaffUserFactory())
