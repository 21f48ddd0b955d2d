from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing_project.tests.api_support import api_customer, staff_client
from core.audit import Actor
from credits.services import credit_grant
from usage.models import Aggregation, MeterPrice, UsageEvent
from usage.tests.factories import MeterFactory


def _event(key: str, meter: str = "calls", **extra) -> dict:
    return {"meter": meter, "idempotency_key": key, **extra}


@pytest.mark.django_db
def test_one_event_is_stored_and_reported():
    caller = api_customer()
    MeterFactory(code="calls")
    response = caller.client.post("/api/v1/usage/events/", _event("k1", quantity="2.5"), format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["duplicates"]) == (1, 0)
    assert body["results"][0]["status"] == "created"
    assert UsageEvent.objects.get(pk=body["results"][0]["id"]).quantity == Decimal("2.5")


@pytest.mark.django_db
def test_a_batch_reports_duplicates_and_a_repeated_batch_is_all_duplicates():
    caller = api_customer()
    MeterFactory(code="calls")
    batch = {"events": [_event("a"), _event("b"), _event("a")]}
    first = caller.client.post("/api/v1/usage/events/", batch, format="json")
    assert first.status_code == 201
    assert [r["status"] for r in first.json()["results"]] == ["created", "created", "duplicate"]
    again = caller.client.post("/api/v1/usage/events/", batch, format="json")
    assert again.status_code == 200
    assert again.json()["created"] == 0
    assert UsageEvent.objects.filter(customer=caller.customer).count() == 2


@pytest.mark.django_db
def test_a_full_batch_of_1000_is_accepted_and_1001_is_refused():
    caller = api_customer()
    MeterFactory(code="calls")
    events = [_event(f"e{i}", properties={"i": i}) for i in range(1000)]
    assert caller.client.post("/api/v1/usage/events/", {"events": events}, format="json").json()["created"] == 1000
    too_many = caller.client.post("/api/v1/usage/events/", {"events": events + [_event("x")]}, format="json")
    assert too_many.status_code == 400


@pytest.mark.django_db
def test_invalid_events_are_reported_per_index_and_nothing_is_stored():
    caller = api_customer()
    MeterFactory(code="calls")
    response = caller.client.post("/api/v1/usage/events/", {"events": [
        _event("ok"), _event("bad-q", quantity=-1), _event("bad-m", meter="nope")]}, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]["events"]
    assert set(fields) == {"1"}  # shape errors first; meters are resolved once the shapes are right
    response = caller.client.post("/api/v1/usage/events/", {"events": [_event("ok"), _event("bad-m", meter="nope")]},
                                  format="json")
    assert response.json()["error"]["fields"]["events"] == {"1": {"meter": ["No active meter with code 'nope'."]}}
    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_events_priced_in_credits_debit_them_or_answer_402():
    caller = api_customer()
    MeterFactory(code="calls", credits_per_unit=Decimal(2))
    credit_grant(customer=caller.customer, amount=5, source="purchase", actor=Actor.system("test"))
    ok = caller.client.post("/api/v1/usage/events/", {"events": [_event("a"), _event("b")]}, format="json")
    assert ok.json()["credits_debited"] == 4
    short = caller.client.post("/api/v1/usage/events/", {"events": [_event("c")]}, format="json")
    assert short.status_code == 402
    assert short.json()["error"]["details"]["balance"] == 1
    assert not UsageEvent.objects.filter(idempotency_key="c").exists()


@pytest.mark.django_db
def test_event_list_filters_by_meter_and_time():
    caller = api_customer()
    MeterFactory(code="calls")
    MeterFactory(code="gb")
    old = (timezone.now() - timedelta(days=3)).isoformat()
    caller.client.post("/api/v1/usage/events/", {"events": [
        _event("a", occurred_at=old), _event("b"), _event("c", meter="gb")]}, format="json")
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    found = caller.client.get("/api/v1/usage/events/", {"meter": "calls", "occurred_after": since}).json()
    assert [e["idempotency_key"] for e in found["results"]] == ["b"]


@pytest.mark.django_db
def test_summary_aggregates_each_meter_its_own_way_over_the_current_period():
    caller = api_customer()
    MeterFactory(code="calls", aggregation=Aggregation.COUNT)
    MeterFactory(code="gb", aggregation=Aggregation.MAX)
    MeterFactory(code="users", aggregation=Aggregation.UNIQUE_COUNT, unique_property="user")
    MeterFactory(code="tokens")
    caller.client.post("/api/v1/usage/events/", {"events": [
        _event("1"), _event("2"), _event("3", meter="gb", quantity=4), _event("4", meter="gb", quantity="2.5"),
        _event("5", meter="users", properties={"user": "u1"}), _event("6", meter="users", properties={"user": "u1"}),
        _event("7", meter="users", properties={"user": "u2"}), _event("8", meter="tokens", quantity=10),
        _event("9", meter="tokens", quantity=5)]}, format="json")
    summary = caller.client.get("/api/v1/usage/summary/").json()
    values = {m["meter"]: Decimal(m["value"]) for m in summary["meters"]}
    assert values == {"calls": 2, "gb": 4, "users": 2, "tokens": 15}
    assert summary["period_end"] is not None

    start = (timezone.now() + timedelta(days=1)).isoformat()
    end = (timezone.now() + timedelta(days=2)).isoformat()
    empty = caller.client.get("/api/v1/usage/summary/", {"start": start, "end": end}).json()
    assert {m["meter"]: Decimal(m["value"]) for m in empty["meters"]} == {"calls": 0, "gb": 0, "users": 0,
                                                                          "tokens": 0}


@pytest.mark.django_db
def test_entitlements_show_the_plan_features_limits_and_prices():
    caller = api_customer(rate_limit_per_minute=5, features=["api_access", "sso"])
    meter = MeterFactory(code="calls")
    MeterPrice.objects.create(plan=caller.plan, meter=meter, unit_amount=Decimal("0.04"), included_units=1000)
    body = caller.client.get("/api/v1/entitlements/").json()
    assert body["plan"]["code"] == caller.plan.code
    assert body["features"] == ["api_access", "sso"]
    assert body["limits"]["rate_limit_per_minute"] == 5
    assert body["meter_prices"] == [{"meter": "calls", "unit_amount": "0.040000", "included_units": "1000.000000"}]


@pytest.mark.django_db
def test_staff_record_usage_for_a_named_customer():
    caller = api_customer()
    MeterFactory(code="calls")
    response = staff_client().post("/api/v1/usage/events/", {"customer": caller.customer.pk,
                                                            "events": [_event("s1")]}, format="json")
    assert response.status_code == 201
    assert UsageEvent.objects.get(idempotency_key="s1").customer_id == caller.customer.pk


@pytest.mark.django_db
def test_summary_and_entitlements_run_constant_queries_whatever_the_number_of_meters(django_assert_max_num_queries):
    caller = api_customer()
    caller.client.get("/api/v1/entitlements/")  # caches the caller's plan limits, as in steady use
    counts = []
    for extra in (1, 8):
        for n in range(extra):
            meter = MeterFactory(aggregation=Aggregation.UNIQUE_COUNT if n % 2 else Aggregation.SUM,
                                 unique_property="user" if n % 2 else "")
            MeterPrice.objects.create(plan=caller.plan, meter=meter, unit_amount=Decimal(1))
        with django_assert_max_num_queries(6) as summary:
            assert caller.client.get("/api/v1/usage/summary/").status_code == 200
        with django_assert_max_num_queries(6) as entitlements:
            assert caller.client.get("/api/v1/entitlements/").status_code == 200
        counts.append((len(summary.captured_queries), len(entitlements.captured_queries)))
    assert counts[0] == counts[1]
