"""The usage thresholds API (staff write, with their permissions; customers read their own and their
plan's) and the alerts API (a customer reads its own), with the error contract."""

from decimal import Decimal

import pytest

from billing_project.tests.admin_helpers import staff_user
from billing_project.tests.api_support import api_customer, staff_client, token_client
from core.audit import Actor
from credits.services import credit_debit, credit_grant
from subscriptions.tests.factories import CustomerFactory, PlanFactory
from usage.models import ThresholdKind, UsageAlert, UsageThreshold
from usage.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/usage/thresholds/"
ACTOR = Actor.system("test")


def _error_fields(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


def test_staff_create_thresholds_per_plan_and_per_customer_of_every_kind():
    client, plan, customer, meter = staff_client(), PlanFactory(), CustomerFactory(), MeterFactory(code="api-calls")
    percent = client.post(URL, {"plan": plan.pk, "meter": "api-calls", "kind": "included_percent", "value": "80"},
                          format="json")
    cap = client.post(URL, {"customer": customer.pk, "meter": "api-calls", "kind": "units", "value": "1000",
                            "hard_cap": True, "name": "contract limit"}, format="json")
    charge = client.post(URL, {"plan": plan.pk, "meter": "api-calls", "kind": "charge", "value": "5000"},
                         format="json")
    credits = client.post(URL, {"plan": plan.pk, "kind": "credit_balance", "value": "500"}, format="json")
    assert [r.status_code for r in (percent, cap, charge, credits)] == [201] * 4
    assert cap.json() | {"id": 0, "created_at": ""} == {
        "id": 0, "name": "contract limit", "plan": None, "customer": customer.pk, "meter": "api-calls",
        "kind": "units", "value": "1000.000000", "hard_cap": True, "created_at": ""}
    assert credits.json()["meter"] is None
    assert UsageThreshold.objects.filter(meter=meter).count() == 3


@pytest.mark.parametrize(("body", "field"), [
    ({"plan": "PLAN", "customer": "CUSTOMER", "kind": "units", "meter": "m", "value": "1"}, "plan"),
    ({"kind": "units", "meter": "m", "value": "1"}, "plan"),
    ({"plan": "PLAN", "kind": "credit_balance", "meter": "m", "value": "1"}, "meter"),
    ({"plan": "PLAN", "kind": "credit_balance", "value": "1", "hard_cap": True}, "hard_cap"),
    ({"plan": "PLAN", "kind": "units", "value": "1"}, "meter"),
    ({"plan": "PLAN", "kind": "units", "meter": "no-such-meter", "value": "1"}, "meter"),
    ({"plan": "PLAN", "kind": "units", "meter": "m", "value": "-1"}, "value"),
    ({"plan": "PLAN", "kind": "units", "meter": "m", "value": "1e30"}, "value"),
    ({"plan": "PLAN", "kind": "weekly", "meter": "m", "value": "1"}, "kind"),
    ({"plan": 2**70, "kind": "units", "meter": "m", "value": "1"}, "plan"),
])
def test_bad_thresholds_are_400_naming_the_field_and_nothing_is_written(body, field):
    plan, customer = PlanFactory(), CustomerFactory()
    MeterFactory(code="m")
    body = {k: plan.pk if v == "PLAN" else customer.pk if v == "CUSTOMER" else v for k, v in body.items()}
    assert field in _error_fields(staff_client().post(URL, body, format="json"))
    assert not UsageThreshold.objects.exists()


def test_staff_change_and_delete_a_threshold_and_the_whole_result_is_checked():
    client, plan = staff_client(), PlanFactory()
    meter = MeterFactory(code="m")
    threshold = UsageThreshold.objects.create(plan=plan, meter=meter, kind=ThresholdKind.UNITS, value=10)
    changed = client.patch(f"{URL}{threshold.pk}/", {"value": "20", "hard_cap": True}, format="json")
    assert changed.status_code == 200 and (changed.json()["value"], changed.json()["hard_cap"]) == ("20.000000", True)
    # Switching to a credit-balance threshold while it still names a meter and is a hard cap: refused whole.
    refused = _error_fields(client.patch(f"{URL}{threshold.pk}/", {"kind": "credit_balance"}, format="json"))
    assert set(refused) == {"meter", "hard_cap"}
    threshold.refresh_from_db()
    assert (threshold.kind, threshold.value) == (ThresholdKind.UNITS, Decimal(20))
    assert client.delete(f"{URL}{threshold.pk}/").status_code == 204
    assert not UsageThreshold.objects.exists()


def test_staff_need_the_models_permissions():
    plan, meter = PlanFactory(), MeterFactory(code="m")
    threshold = UsageThreshold.objects.create(plan=plan, meter=meter, kind=ThresholdKind.UNITS, value=10)
    viewer = token_client(staff_user("usage.view_usagethreshold"))
    assert viewer.get(URL).status_code == 200
    body = {"plan": plan.pk, "meter": "m", "kind": "units", "value": "5"}
    assert viewer.post(URL, body, format="json").status_code == 403
    assert viewer.patch(f"{URL}{threshold.pk}/", {"value": "1"}, format="json").status_code == 403
    assert viewer.delete(f"{URL}{threshold.pk}/").status_code == 403
    assert token_client(staff_user("usage.view_meter", username="other")).get(URL).status_code == 403


def test_list_filters_by_plan_customer_meter_kind_and_hard_cap():
    plan, customer = PlanFactory(), CustomerFactory()
    calls, storage = MeterFactory(code="calls"), MeterFactory(code="storage")
    a = UsageThreshold.objects.create(plan=plan, meter=calls, kind=ThresholdKind.UNITS, value=1, hard_cap=True)
    b = UsageThreshold.objects.create(customer=customer, meter=storage, kind=ThresholdKind.UNITS, value=1)
    c = UsageThreshold.objects.create(plan=plan, kind=ThresholdKind.CREDIT_BALANCE, value=1)
    client = staff_client()

    def ids(query: str) -> list[int]:
        response = client.get(f"{URL}?{query}")
        assert response.status_code == 200
        return [row["id"] for row in response.json()["results"]]

    assert ids(f"plan={plan.pk}") == [a.pk, c.pk] and ids(f"customer={customer.pk}") == [b.pk]
    assert ids("meter=storage") == [b.pk] and ids("kind=credit_balance") == [c.pk] and ids("hard_cap=true") == [a.pk]
    assert client.get(f"{URL}?kind=weekly").status_code == 400


def test_customers_read_their_own_and_their_plans_thresholds_but_write_none():
    caller = api_customer()
    meter = MeterFactory(code="m")
    of_plan = UsageThreshold.objects.create(plan=caller.plan, meter=meter, kind=ThresholdKind.UNITS, value=1)
    own = UsageThreshold.objects.create(customer=caller.customer, kind=ThresholdKind.CREDIT_BALANCE, value=5)
    other = UsageThreshold.objects.create(customer=CustomerFactory(), meter=meter, kind=ThresholdKind.UNITS, value=1)
    UsageThreshold.objects.create(plan=PlanFactory(), meter=meter, kind=ThresholdKind.UNITS, value=1)

    listed = caller.client.get(URL)
    assert listed.status_code == 200 and [r["id"] for r in listed.json()["results"]] == [of_plan.pk, own.pk]
    assert caller.client.get(f"{URL}{own.pk}/").status_code == 200
    assert caller.client.get(f"{URL}{other.pk}/").status_code == 404  # not even told it exists
    assert caller.client.post(URL, {"customer": caller.customer.pk, "kind": "credit_balance", "value": "1"},
                              format="json").status_code == 403
    assert caller.client.patch(f"{URL}{own.pk}/", {"value": "0"}, format="json").status_code == 403
    assert caller.client.delete(f"{URL}{other.pk}/").status_code == 404
    assert UsageThreshold.objects.count() == 4


def test_customers_read_their_own_alerts_only():
    caller, someone = api_customer(), CustomerFactory()
    for customer in (caller.customer, someone):
        credit_grant(customer=customer, amount=100, source="promotion", actor=ACTOR)
        UsageThreshold.objects.create(customer=customer, kind=ThresholdKind.CREDIT_BALANCE, value=50)
        credit_debit(customer=customer, amount=60, actor=ACTOR)
    mine = UsageAlert.objects.get(customer=caller.customer)

    listed = caller.client.get("/api/v1/usage/alerts/")
    assert listed.status_code == 200
    assert [(r["id"], r["kind"], r["observed"]) for r in listed.json()["results"]] == [
        (mine.pk, "credit_balance", "40.000000")]
    other = UsageAlert.objects.get(customer=someone)
    assert caller.client.get(f"/api/v1/usage/alerts/{other.pk}/").status_code == 404
    assert len(staff_client().get("/api/v1/usage/alerts/?kind=credit_balance").json()["results"]) == 2
