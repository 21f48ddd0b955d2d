import json

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from billing_project.tests.api_support import api_customer, staff_client
from billing_project.tests.redis_support import redis_caches
from core.audit import Actor
from core.memo import memos_forget, memos_warm
from credits.api.serializers import CreditWriteSerializer
from credits.models import CreditLedgerEntry
from credits.selectors import credit_balance_get
from credits.services import CreditWrite, credit_grant
from modules.selectors import modules_enabled_codes, modules_state_forget


@pytest.mark.django_db
def test_balance_ledger_and_grants_of_the_caller():
    caller = api_customer()
    credit_grant(customer=caller.customer, amount=100, source="purchase", actor=Actor.system("test"))
    balance = caller.client.get("/api/v1/credits/balance/").json()
    assert (balance["customer"], balance["balance"], balance["purchased"]) == (caller.customer.pk, 100, 100)
    ledger = caller.client.get("/api/v1/credits/ledger/?kind=grant").json()["results"]
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in ledger] == [("grant", 100, 100)]
    grants = caller.client.get("/api/v1/credits/grants/?has_remaining=true").json()["results"]
    assert [g["remaining"] for g in grants] == [100]


@pytest.mark.django_db
def test_debit_takes_credits_and_a_short_balance_is_402():
    caller = api_customer()
    credit_grant(customer=caller.customer, amount=30, source="purchase", actor=Actor.system("test"))
    taken = caller.client.post("/api/v1/credits/debit/", {"amount": 20, "reason": "export"}, format="json")
    assert taken.status_code == 201
    assert taken.json()["balance"] == 10
    short = caller.client.post("/api/v1/credits/debit/", {"amount": 11}, format="json")
    assert short.status_code == 402
    assert short.json()["error"]["details"] == {"balance": 10, "required": 11}
    assert credit_balance_get(customer=caller.customer) == 10


@pytest.mark.django_db
def test_debit_with_a_body_idempotency_key_takes_credits_once():
    caller = api_customer()
    credit_grant(customer=caller.customer, amount=30, source="purchase", actor=Actor.system("test"))
    body = {"amount": 5, "idempotency_key": "job-7"}
    first = caller.client.post("/api/v1/credits/debit/", body, format="json")
    again = caller.client.post("/api/v1/credits/debit/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["replayed"] is True
    assert credit_balance_get(customer=caller.customer) == 25


@pytest.mark.django_db
def test_only_staff_grant_credits():
    caller = api_customer()
    body = {"customer": caller.customer.pk, "amount": 50, "source": "promotion", "priority": 0}
    assert caller.client.post("/api/v1/credits/grants/", body, format="json").status_code == 403
    response = staff_client().post("/api/v1/credits/grants/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["balance"] == 50
    assert credit_balance_get(customer=caller.customer) == 50


@pytest.mark.django_db
def test_staff_must_name_the_customer():
    response = staff_client().post("/api/v1/credits/debit/", {"amount": 1}, format="json")
    assert response.status_code == 400
    assert "customer" in response.json()["error"]["fields"]


@pytest.fixture
def cache_calls(settings, monkeypatch):
    """Production's cache (Redis, through ResilientRedisCache) and every call a request makes to it:
    (method, key). Each of its methods is one round trip to Redis."""
    settings.CACHES = redis_caches()
    caches["default"].clear()
    calls = []
    backend = caches["default"]
    for method in ("get", "set", "add", "incr", "delete", "get_many", "set_many", "touch", "has_key",
                   "incr_window"):
        real = getattr(backend, method)

        def counted(*args, _real=real, _method=method, **kwargs):
            calls.append((_method, args[0] if args else None))
            return _real(*args, **kwargs)

        monkeypatch.setattr(backend, method, counted)
    return calls


def _steady_state_after_one_debit(caller) -> None:
    credit_grant(customer=caller.customer, amount=30, source="purchase", actor=Actor.system("test"))
    caller.client.post("/api/v1/credits/debit/", {"amount": 1}, format="json")  # fills the caches and memos
    modules_state_forget()
    modules_enabled_codes()  # the process's memos as a request in steady state finds them
    memos_warm()


@pytest.mark.django_db(transaction=True)
def test_a_customers_debit_is_one_query_and_no_cache_round_trip(cache_calls):
    """The hot path over HTTP, outside any transaction as in production: the one debit statement (its own
    transaction) and nothing else. The token's holder and the plan limits come from the process's memo
    (subscriptions/api/callers.py); the token row, the Customer row and the subscription are not read; the
    plan has no rate limits, so no counter is touched."""
    caller = api_customer()
    _steady_state_after_one_debit(caller)
    cache_calls.clear()

    with CaptureQueriesContext(connection) as context:
        taken = caller.client.post("/api/v1/credits/debit/", {"amount": 2, "idempotency_key": "k"}, format="json")

    assert taken.status_code == 201 and taken.json()["balance"] == 27
    statements = [q["sql"] for q in context.captured_queries]
    assert len(statements) == 1 and statements[0].startswith("SELECT * FROM credits_debit(")
    assert cache_calls == []


@pytest.mark.django_db(transaction=True)
def test_checking_for_changes_on_every_request_costs_a_cache_read_per_lookup(cache_calls, settings):
    settings.API_CALLERS_CHECK_SECONDS = 0
    caller = api_customer()
    _steady_state_after_one_debit(caller)
    cache_calls.clear()

    with CaptureQueriesContext(connection) as context:
        taken = caller.client.post("/api/v1/credits/debit/", {"amount": 2}, format="json")

    assert taken.status_code == 201 and len(context.captured_queries) == 1
    assert cache_calls == [("get", "memo-version:api-callers")] * 2  # the token's holder, the plan limits


@pytest.mark.django_db(transaction=True)
def test_a_process_that_forgot_its_callers_reads_them_from_the_cache_not_the_database(cache_calls):
    caller = api_customer()
    _steady_state_after_one_debit(caller)
    memos_forget()  # as a process that has just started, or whose memo of callers was just emptied
    memos_warm()
    cache_calls.clear()

    with CaptureQueriesContext(connection) as context:
        taken = caller.client.post("/api/v1/credits/debit/", {"amount": 2}, format="json")

    assert taken.status_code == 201 and len(context.captured_queries) == 1
    assert [(method, key.split(":")[0]) for method, key in cache_calls] == [("get", "api-token"),
                                                                          ("get", "api-client")]


@pytest.mark.django_db(transaction=True)
def test_a_rate_limited_customers_debit_adds_one_cache_round_trip_per_window(cache_calls):
    caller = api_customer(rate_limit_per_minute=100, rate_limit_per_hour=1000, api_calls_per_day=0)
    _steady_state_after_one_debit(caller)
    cache_calls.clear()

    with CaptureQueriesContext(connection) as context:
        taken = caller.client.post("/api/v1/credits/debit/", {"amount": 2}, format="json")

    assert taken.status_code == 201 and taken["X-RateLimit-Remaining"] == "98"
    assert len(context.captured_queries) == 1
    methods = [(method, key.split(":")[0]) for method, key in cache_calls]
    assert methods == [("incr_window", "ratelimit")] * 2


@pytest.mark.django_db
def test_a_customer_naming_another_customer_in_a_debit_gets_404_and_nothing_is_taken():
    caller, other = api_customer(), api_customer()
    credit_grant(customer=other.customer, amount=30, source="purchase", actor=Actor.system("test"))

    response = caller.client.post("/api/v1/credits/debit/", {"amount": 2, "customer": other.customer.pk},
                                  format="json")

    assert response.status_code == 404
    assert credit_balance_get(customer=other.customer) == 30


@pytest.mark.django_db
def test_the_debit_answers_exactly_what_its_documented_serializer_renders():
    caller = api_customer()
    credit_grant(customer=caller.customer, amount=30, source="purchase", actor=Actor.system("test"))
    body = {"amount": 4, "reason": "report export", "idempotency_key": "job-1"}

    answers = [caller.client.post("/api/v1/credits/debit/", body, format="json") for _ in range(2)]

    entry = CreditLedgerEntry.objects.get(customer=caller.customer, idempotency_key="job-1")
    for answer, replayed in zip(answers, (False, True), strict=True):
        documented = CreditWriteSerializer(CreditWrite(entry=entry, replayed=replayed)).data
        assert answer.json() == json.loads(JSONRenderer().render(documented))
