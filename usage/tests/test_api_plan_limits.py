"""A plan's per-request usage batch cap answers 403 `plan_limit_exceeded` naming the limit."""

import pytest

from billing_project.tests.api_support import api_customer, staff_client
from usage.models import UsageEvent
from usage.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db


def _batch(size: int, prefix: str = "k") -> dict:
    return {"events": [{"meter": "calls", "idempotency_key": f"{prefix}{n}"} for n in range(size)]}


def test_a_batch_over_the_plans_cap_is_refused_naming_the_limit_and_nothing_is_stored():
    MeterFactory(code="calls")
    caller = api_customer(usage_batch_max_events=2)

    refused = caller.client.post("/api/v1/usage/events/", _batch(3), format="json")
    accepted = caller.client.post("/api/v1/usage/events/", _batch(2), format="json")

    error = refused.json()["error"]
    assert refused.status_code == 403 and error["code"] == "plan_limit_exceeded"
    assert error["details"] == {"limit": "usage_batch_max_events", "allowed": 2, "requested": 3}
    assert accepted.status_code == 201
    assert UsageEvent.objects.count() == 2


def test_no_cap_means_the_apis_maximum_and_staff_are_not_limited():
    MeterFactory(code="calls")
    caller = api_customer()

    assert caller.client.post("/api/v1/usage/events/", _batch(50), format="json").status_code == 201
    staff = staff_client().post("/api/v1/usage/events/", {**_batch(3, "s"), "customer": caller.customer.pk},
                                format="json")
    assert staff.status_code == 201
