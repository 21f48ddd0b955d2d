"""List endpoints of models with a name or an email accept `?search=` over them."""

import pytest

from billing_project.tests.api_support import staff_client
from subscriptions.tests.factories import CustomerFactory, PlanFactory
from usage.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_customers_are_found_by_part_of_their_name_or_email_case_insensitively():
    acme = CustomerFactory(name="Acme Ltd", email="billing@acme.test", user=None)
    globex = CustomerFactory(name="Globex", email="accounts@globex.test", user=None)
    client = staff_client()

    assert _ids(client.get("/api/v1/customers/?search=ACME")) == {acme.pk}
    assert _ids(client.get("/api/v1/customers/?search=accounts@")) == {globex.pk}
    assert _ids(client.get("/api/v1/customers/?search=nobody")) == set()


def test_plans_and_meters_are_found_by_name_or_code():
    pro = PlanFactory(code="pro", name="Professional")
    PlanFactory(code="free", name="Free")
    calls = MeterFactory(code="api-calls", name="API calls")
    MeterFactory(code="storage", name="Storage")
    client = staff_client()

    assert _ids(client.get("/api/v1/plans/?search=profess")) == {pro.pk}
    assert _ids(client.get("/api/v1/meters/?search=CALLS")) == {calls.pk}


def test_a_search_too_long_is_a_400_naming_it():
    response = staff_client().get("/api/v1/customers/", {"search": "x" * 201})

    assert response.status_code == 400 and "search" in response.json()["error"]["fields"]
