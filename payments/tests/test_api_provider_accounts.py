"""The API shows a customer's provider accounts and a plan's provider prices read-only, in a shape that
names no rail's columns (docs/api.md)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_project.tests.api_support import api_customer, staff_client
from payments.models import ProviderAccount, ProviderPlanPrice

pytestmark = pytest.mark.django_db


def test_a_customer_sees_its_provider_accounts_and_cannot_write_them():
    caller = api_customer()
    ProviderAccount.objects.create(customer=caller.customer, provider="stripe", provider_customer_id="cus_1",
                                   default_payment_method_id="pm_1")
    ProviderAccount.objects.create(customer=caller.customer, provider="paypal")

    me = caller.client.get("/api/v1/customers/me/").json()
    patched = caller.client.patch(f"/api/v1/customers/{caller.customer.pk}/", {
        "provider_accounts": [{"provider": "stripe", "provider_customer_id": "cus_other"}]}, format="json")

    assert me["provider_accounts"] == [
        {"provider": "paypal", "provider_customer_id": None, "has_default_payment_method": False},
        {"provider": "stripe", "provider_customer_id": "cus_1", "has_default_payment_method": True}]
    assert "stripe_customer_id" not in me
    assert patched.status_code == 200
    assert ProviderAccount.objects.get(customer=caller.customer, provider="stripe").provider_customer_id == "cus_1"


def test_staff_list_customers_with_their_accounts_in_a_fixed_number_of_queries():
    client = staff_client()

    def listed_queries(new_customers: int) -> tuple[int, list]:
        for _ in range(new_customers):
            caller = api_customer()
            ProviderAccount.objects.create(customer=caller.customer, provider="stripe")
        client.get("/api/v1/customers/")  # caches the caller's plan limits, as any earlier request would
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/api/v1/customers/").json()
        return len(queries), body["results"]

    few, _ = listed_queries(1)
    many, rows = listed_queries(3)

    assert few == many
    assert [row["provider_accounts"][0]["provider"] for row in rows] == ["stripe"] * 4


def test_a_plan_shows_its_price_at_each_rail():
    caller = api_customer()
    ProviderPlanPrice.objects.create(plan=caller.plan, provider="stripe", provider_price_id="price_1")

    body = caller.client.get(f"/api/v1/plans/{caller.plan.pk}/").json()

    assert body["provider_prices"] == [{"provider": "stripe", "provider_price_id": "price_1",
                                        "provider_product_id": ""}]
    assert "stripe_price_id" not in body
