"""CSV export of usage events: from the API with the list's filters, and from the admin."""

import csv
import io
from decimal import Decimal

import pytest

from billing_project.tests.admin_helpers import post_action
from billing_project.tests.api_support import api_customer
from usage.models import UsageEvent
from usage.services import UsageEventInput, usage_events_record_batch
from usage.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db


def _csv(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_usage_events_export_with_their_dimensions_and_the_list_filters(admin_client):
    caller = api_customer()
    MeterFactory(code="calls")
    MeterFactory(code="gb")
    usage_events_record_batch(customer=caller.customer, events=[
        UsageEventInput(meter_code="calls", idempotency_key="a", quantity=Decimal(2),
                        dimensions={"tokens_used": 10, "cost": "0.5", "endpoint": "/chat"}),
        UsageEventInput(meter_code="gb", idempotency_key="b")])
    rows = _csv(caller.client.get("/api/v1/usage/events/export/", {"meter": "calls"}))
    assert [(r["idempotency_key"], r["tokens_used"], r["cost"], r["endpoint"]) for r in rows] == [
        ("a", "10", "0.500000", "/chat")]
    assert len(_csv(post_action(admin_client, UsageEvent, "export_csv", UsageEvent.objects.all(), follow=False))) == 2
