import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from billing_project.tests.api_support import api_customer, staff_client
from core.audit import Actor
from credits.api.serializers import CreditWriteSerializer
from credits.models import CreditLedgerEntry
from credits.selectors import credit_balance_get
from credits.services import CreditWrite, credit_grant


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


@pytest.mark.django_db(transaction=True)
def test_a_customers_debit_is_two_queries_the_token_and_the_debit():
    """The hot path over HTTP, outside any transaction as in production: the token's lookup, then the one
    debit statement (its own transaction). The plan limits come from the client cache and the customer
    is the caller's own, so neither the Customer row nor the subscription is read."""
    caller = api_customer()
    credit_grant(customer=caller.customer, amount=30, source="purchase", actor=Actor.system("test"))
    caller.client.post("/api/v1/credits/debit/", {"amount": 1}, format="json")  # fills the client cache

    with CaptureQueriesContext(connection) as context:
        taken = caller.client.post("/api/v1/credits/debit/", {"amount": 2, "idempotency_key": "k"}, format="json")

    assert taken.status_code == 201 and taken.json()["balance"] == 27
    statements = [q["sql"] for q in context.captured_queries]
    assert len(statements) == 2
    assert "authtoken_token" in statements[0] and statements[1].startswith("SELECT * FROM credits_debit(")


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
