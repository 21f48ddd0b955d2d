import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing_project.tests.api_support import api_customer, staff_client
from subscriptions.models import Customer, Plan
from subscriptions.tests.factories import PlanFactory, SubscriptionFactory, UserFactory


@pytest.mark.django_db
def test_token_endpoint_trades_username_and_password_for_a_token():
    user = UserFactory(username="ann")
    response = APIClient().post("/api/v1/auth/token/", {"username": "ann", "password": "pass-word-123"},
                                format="json")
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=user).key
    bad = APIClient().post("/api/v1/auth/token/", {"username": "ann", "password": "nope"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request"


@pytest.mark.django_db
def test_session_auth_works_for_the_browsable_api():
    caller = api_customer()
    client = APIClient()
    client.force_login(caller.customer.user)
    response = client.get("/api/v1/customers/me/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content.lower()


@pytest.mark.django_db
def test_everyone_signed_in_reads_plans_and_only_staff_write_them():
    caller = api_customer()
    PlanFactory(code="gold", is_active=False)
    codes = [p["code"] for p in caller.client.get("/api/v1/plans/?is_active=false").json()["results"]]
    assert codes == ["gold"]
    body = {"code": "team", "name": "Team", "amount": 4900, "features": ["api_access"]}
    assert caller.client.post("/api/v1/plans/", body, format="json").status_code == 403

    created = staff_client().post("/api/v1/plans/", body, format="json")
    assert created.status_code == 201, created.content
    assert Plan.objects.get(code="team").features == ["api_access"]


@pytest.mark.django_db
def test_plans_filter_by_amount_range_and_feature():
    caller = api_customer(amount=100, features=["api_access"])
    PlanFactory(code="cheap", amount=50, features=[])
    PlanFactory(code="dear", amount=9000, features=["api_access", "sso"])
    found = caller.client.get("/api/v1/plans/?amount_min=60&feature=api_access&ordering=-amount").json()["results"]
    assert [p["code"] for p in found] == ["dear", caller.plan.code]


@pytest.mark.django_db
def test_a_plan_with_subscribers_keeps_its_price():
    plan = PlanFactory()
    SubscriptionFactory(plan=plan)
    client = staff_client()
    response = client.patch(f"/api/v1/plans/{plan.pk}/", {"amount": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "plan_has_subscribers"
    assert client.patch(f"/api/v1/plans/{plan.pk}/", {"name": "Renamed"}, format="json").status_code == 200


@pytest.mark.django_db
def test_a_customer_sees_and_edits_only_itself():
    caller = api_customer()
    api_customer()
    listed = caller.client.get("/api/v1/customers/").json()["results"]
    assert [c["id"] for c in listed] == [caller.customer.pk]
    assert caller.client.get("/api/v1/customers/me/").json()["id"] == caller.customer.pk
    response = caller.client.patch(f"/api/v1/customers/{caller.customer.pk}/", {"name": "New name"}, format="json")
    assert response.status_code == 200
    assert Customer.objects.get(pk=caller.customer.pk).name == "New name"
    assert caller.client.post("/api/v1/customers/", {"name": "x", "email": "x@example.com"},
                              format="json").status_code == 403


@pytest.mark.django_db
def test_staff_create_customers_linked_to_a_user():
    user = UserFactory()
    response = staff_client().post("/api/v1/customers/", {"name": "Acme", "email": "billing@acme.test",
                                                          "user": user.pk, "currency": "EUR"}, format="json")
    assert response.status_code == 201, response.content
    assert Customer.objects.get(user=user).currency == "EUR"
    assert staff_client().get("/api/v1/customers/me/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(("interval", "count", "status"), [
    ("month", 120, 201), ("year", 10, 201), ("month", 121, 400), ("year", 11, 400), ("year", 32767, 400),
])
def test_a_billing_period_is_at_most_ten_years(interval, count, status):
    body = {"code": f"p-{interval}-{count}", "name": "Long", "amount": 100, "interval": interval,
            "interval_count": count}

    response = staff_client().post("/api/v1/plans/", body, format="json")

    assert response.status_code == status
    assert Plan.objects.filter(code=body["code"]).exists() == (status == 201)
