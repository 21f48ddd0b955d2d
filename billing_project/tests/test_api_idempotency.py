import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from billing_project.audit import Actor
from billing_project.exceptions import InvalidOperation
from billing_project.tests.api_support import api_customer, staff_client, token_client
from billing_project.tests.threads import run_threads
from credits.models import CreditLedgerEntry
from credits.selectors import credit_balance_get
from credits.services import credit_grant
from subscriptions.models import ApiIdempotencyKey
from subscriptions.services import idempotency_keys_purge
from subscriptions.tests.factories import CustomerFactory


def _funded(amount: int = 100):
    caller = api_customer()
    credit_grant(customer=caller.customer, amount=amount, source="purchase", actor=Actor.system("test"))
    return caller


@pytest.mark.django_db
def test_same_key_and_body_replays_the_first_response_and_does_nothing_twice():
    caller = _funded()
    first = caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert credit_balance_get(customer=caller.customer) == 90
    assert CreditLedgerEntry.objects.filter(customer=caller.customer, kind="debit").count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_409():
    caller = _funded()
    caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    response = caller.client.post("/api/v1/credits/debit/", {"amount": 11}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert credit_balance_get(customer=caller.customer) == 90


@pytest.mark.django_db
def test_same_key_on_another_endpoint_is_409():
    caller = _funded()
    caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    response = caller.client.post(f"/api/v1/subscriptions/{caller.subscription.pk}/pause/", {"amount": 10},
                                  format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 409


@pytest.mark.django_db
def test_an_error_answer_is_replayed_too():
    caller = api_customer()
    first = caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    credit_grant(customer=caller.customer, amount=100, source="purchase", actor=Actor.system("test"))
    again = caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k2")

    assert first.status_code == again.status_code == 402
    assert again.json() == first.json()
    assert credit_balance_get(customer=caller.customer) == 100


@pytest.mark.django_db
def test_keys_are_per_customer():
    one, two = _funded(), _funded()
    for caller in (one, two):
        response = caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json",
                                      HTTP_IDEMPOTENCY_KEY="shared")
        assert response.status_code == 201
    assert credit_balance_get(customer=one.customer) == credit_balance_get(customer=two.customer) == 90


@pytest.mark.django_db
def test_staff_keys_belong_to_the_staff_user():
    customer = CustomerFactory()
    credit_grant(customer=customer, amount=50, source="purchase", actor=Actor.system("test"))
    client = staff_client()
    body = {"amount": 5, "customer": customer.pk}
    for _ in range(2):
        assert client.post("/api/v1/credits/debit/", body, format="json", HTTP_IDEMPOTENCY_KEY="s").status_code == 201
    assert credit_balance_get(customer=customer) == 45
    assert ApiIdempotencyKey.objects.get(key="s").customer_id is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_execute_once():
    caller = _funded(1000)
    barrier = threading.Barrier(5)
    statuses = []

    def send():
        client = token_client(caller.customer.user)
        try:
            barrier.wait()
            response = client.post("/api/v1/credits/debit/", {"amount": 7}, format="json",
                                   HTTP_IDEMPOTENCY_KEY="race")
            statuses.append((response.status_code, response.json()["entry"]["id"]))
        finally:
            connection.close()

    run_threads([send] * 5)

    assert len(statuses) == 5
    assert {status for status, _ in statuses} == {201}
    assert len({entry for _, entry in statuses}) == 1
    assert credit_balance_get(customer=caller.customer) == 993


@pytest.mark.django_db
def test_purge_forgets_keys_older_than_the_retention_only():
    caller = _funded()
    caller.client.post("/api/v1/credits/debit/", {"amount": 1}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    caller.client.post("/api/v1/credits/debit/", {"amount": 1}, format="json", HTTP_IDEMPOTENCY_KEY="new")
    ApiIdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))

    assert idempotency_keys_purge(older_than=timedelta(hours=24)) == 1
    assert list(ApiIdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    with pytest.raises(InvalidOperation):
        idempotency_keys_purge(older_than=timedelta(hours=1))


@pytest.mark.django_db
def test_purge_command_runs_the_service(capsys):
    caller = _funded()
    caller.client.post("/api/v1/credits/debit/", {"amount": 1}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    ApiIdempotencyKey.objects.update(created_at=timezone.now() - timedelta(days=3))
    call_command("idempotency_keys_purge", "--older-than-hours", "48")
    assert "1 idempotency keys" in capsys.readouterr().out
    assert not ApiIdempotencyKey.objects.exists()
