"""Typed usage dimensions (tokens, response time, cost, request and batch ids, endpoint, language,
category): carried through batch ingestion, checked on the way in, filtered, and grouped and totalled by
`usage_totals` (recomputed here by plain SQL over random events)."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from billing_project.tests.api_support import api_customer
from subscriptions.tests.factories import CustomerFactory
from usage.models import UsageEvent
from usage.selectors import USAGE_GROUPS, usage_totals
from usage.services import UsageEventInput, usage_events_record_batch
from usage.tests.factories import MeterFactory

AI_CALL = {"tokens_used": 150, "response_time_ms": 2500, "cost": "0.1", "request_id": "req-1", "batch_id": "b-7",
           "endpoint": "/v1/chat", "language_code": "ar", "category": "electronics"}


@pytest.mark.django_db
def test_a_batch_carries_the_typed_dimensions_into_their_columns():
    caller = api_customer()
    MeterFactory(code="calls")
    response = caller.client.post("/api/v1/usage/events/", {"events": [
        {"meter": "calls", "idempotency_key": "a", **AI_CALL}, {"meter": "calls", "idempotency_key": "b"}]},
        format="json")
    assert response.status_code == 201, response.content
    full, bare = UsageEvent.objects.order_by("idempotency_key")
    assert (full.tokens_used, full.response_time_ms, full.cost) == (150, 2500, Decimal("0.1"))
    assert (full.request_id, full.batch_id, full.endpoint, full.language_code, full.category) == (
        "req-1", "b-7", "/v1/chat", "ar", "electronics")
    assert (bare.tokens_used, bare.cost, bare.endpoint, bare.category) == (None, None, "", "")
    listed = caller.client.get("/api/v1/usage/events/", {"endpoint": "/v1/chat"}).json()["results"]
    assert [(e["idempotency_key"], e["cost"], e["language_code"]) for e in listed] == [("a", "0.100000", "ar")]


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), [
    ("tokens_used", -1), ("tokens_used", "many"), ("tokens_used", True), ("tokens_used", 2**63),
    ("response_time_ms", 2**31), ("response_time_ms", 1.5), ("cost", "-0.5"), ("cost", "NaN"),
    ("cost", "0.0000001"), ("endpoint", "x" * 101), ("language_code", 12), ("request_id", "a\x00b"),
])
def test_bad_dimensions_answer_400_naming_the_event_and_field_and_store_nothing(field, value):
    caller = api_customer()
    MeterFactory(code="calls")
    response = caller.client.post("/api/v1/usage/events/", {"events": [
        {"meter": "calls", "idempotency_key": "ok"}, {"meter": "calls", "idempotency_key": "bad", field: value}]},
        format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]["events"]["1"]
    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_the_summary_groups_and_totals_the_period_by_a_dimension():
    caller = api_customer()
    MeterFactory(code="calls")
    caller.client.post("/api/v1/usage/events/", {"events": [
        {"meter": "calls", "idempotency_key": "1", **AI_CALL},
        {"meter": "calls", "idempotency_key": "2", **AI_CALL, "tokens_used": 50, "response_time_ms": 500},
        {"meter": "calls", "idempotency_key": "3", "endpoint": "/v1/embed", "cost": "0.25"}]}, format="json")
    summary = caller.client.get("/api/v1/usage/summary/", {"group_by": "endpoint"}).json()
    groups = {g["key"]: g for g in summary["groups"]}
    assert groups["/v1/chat"]["events"] == 2 and groups["/v1/chat"]["tokens_used"] == 200
    assert groups["/v1/chat"]["response_time_ms_avg"] == "1500.00" and groups["/v1/chat"]["cost"] == "0.200000"
    assert groups["/v1/embed"]["response_time_ms_avg"] is None and groups["/v1/embed"]["cost"] == "0.250000"
    bad = caller.client.get("/api/v1/usage/summary/", {"group_by": "colour"})
    assert bad.status_code == 400 and "group_by" in bad.json()["error"]["fields"]


def _random_events(seed: int) -> None:
    rng = random.Random(seed)
    meters = [MeterFactory(code=f"m{n}") for n in range(3)]
    customers = [CustomerFactory(user=None, currency=c) for c in ("USD", "USD", "EUR")]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for customer in customers:
        events = [UsageEventInput(
            meter_code=rng.choice(meters).code, idempotency_key=f"r{n}", quantity=Decimal(rng.randrange(1, 9)),
            occurred_at=start + timedelta(hours=rng.randrange(24 * 70)),
            dimensions={k: v for k, v in {
                "tokens_used": rng.choice([None, rng.randrange(10_000)]),
                "response_time_ms": rng.choice([None, rng.randrange(5_000)]),
                "cost": rng.choice([None, str(Decimal(rng.randrange(10**6)) / 10**6)]),
                "endpoint": rng.choice([None, "/chat", "/embed"]), "category": rng.choice([None, "a", "b"]),
                "language_code": rng.choice([None, "en", "ar"]), "batch_id": rng.choice([None, "b1"]),
                "request_id": f"q{n % 5}"}.items() if v is not None})
            for n in range(120)]
        usage_events_record_batch(customer=customer, events=events)


_KEYS = {"meter": "m.code", "customer": "e.customer_id::text",
         "day": "to_char(date_trunc('day', e.occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')",
         "month": "to_char(date_trunc('month', e.occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"}


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2])
def test_usage_totals_match_sql_for_every_grouping(seed):
    _random_events(seed)
    start, end = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    for group_by in USAGE_GROUPS:
        with connection.cursor() as cursor:
            cursor.execute(f"""
                SELECT c.currency, {_KEYS.get(group_by, 'e.' + group_by)}, COUNT(*), SUM(e.quantity),
                       COALESCE(SUM(e.tokens_used), 0), COALESCE(SUM(e.response_time_ms), 0),
                       ROUND(AVG(e.response_time_ms), 2), COALESCE(SUM(e.cost), 0)
                FROM usage_usageevent e JOIN usage_meter m ON m.id = e.meter_id
                JOIN subscriptions_customer c ON c.id = e.customer_id
                WHERE e.occurred_at >= %s AND e.occurred_at < %s GROUP BY 1, 2""", [start, end])
            expected = {(r[0], r[1]): tuple(r[2:]) for r in cursor.fetchall()}
        got = {(t.currency, t.key): (t.events, t.quantity, t.tokens_used, t.response_time_ms_total,
                                     t.response_time_ms_avg, t.cost)
               for t in usage_totals(start=start, end=end, group_by=group_by)}
        assert got == expected and got, group_by
    euro = usage_totals(start=start, end=end, group_by="meter", currency="EUR")
    assert euro and {t.currency for t in euro} == {"EUR"}
