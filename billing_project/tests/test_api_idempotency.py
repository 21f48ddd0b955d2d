import hashlib
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from billing_project.tests.api_support import api_customer, staff_client, token_client
from billing_project.tests.threads import run_threads
from core.audit import Actor
from core.exceptions import InvalidOperation, PaymentProviderError
from credits.api import views as credits_api_views
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
    answers = []

    def send():
        client = token_client(caller.customer.user)
        try:
            barrier.wait()
            response = client.post("/api/v1/credits/debit/", {"amount": 7}, format="json",
                                   HTTP_IDEMPOTENCY_KEY="race")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    run_threads([send] * 5)

    assert len(answers) == 5
    # The request holding the key runs; the others replay its answer or, while it runs, hear it is in progress.
    assert {status for status, _ in answers} <= {201, 409}
    assert all(body["error"]["code"] == "idempotency_request_in_progress" for status, body in answers if status == 409)
    assert len({body["entry"]["id"] for status, body in answers if status == 201}) == 1
    retry = token_client(caller.customer.user).post("/api/v1/credits/debit/", {"amount": 7}, format="json",
                                                    HTTP_IDEMPOTENCY_KEY="race")
    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true"
    assert credit_balance_get(customer=caller.customer) == 993


def _claim_left_behind(caller, *, key: str, locked_until):
    body = b'{"amount": 10}'
    return ApiIdempotencyKey.objects.create(customer=caller.customer, key=key, request_method="POST",
                                            request_path="/api/v1/credits/debit/",
                                            request_hash=hashlib.sha256(body).hexdigest(), locked_until=locked_until)


@pytest.mark.django_db
def test_the_same_key_while_the_first_request_runs_is_409_in_progress_and_changes_nothing():
    caller = _funded()
    _claim_left_behind(caller, key="busy", locked_until=timezone.now() + timedelta(minutes=5))
    response = caller.client.post("/api/v1/credits/debit/", b'{"amount": 10}', content_type="application/json",
                                  HTTP_IDEMPOTENCY_KEY="busy")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "idempotency_request_in_progress" and error["details"]["retry_after"] > 0
    assert credit_balance_get(customer=caller.customer) == 100


@pytest.mark.django_db
def test_a_claim_left_by_a_crashed_request_is_taken_over_after_its_lease():
    caller = _funded()
    _claim_left_behind(caller, key="crashed", locked_until=timezone.now() - timedelta(seconds=1))
    response = caller.client.post("/api/v1/credits/debit/", b'{"amount": 10}', content_type="application/json",
                                  HTTP_IDEMPOTENCY_KEY="crashed")

    assert response.status_code == 201
    record = ApiIdempotencyKey.objects.get(key="crashed")
    assert (record.response_status, record.locked_until) == (201, None)
    assert credit_balance_get(customer=caller.customer) == 90


@pytest.mark.django_db
def test_a_server_error_or_an_exception_releases_the_key_so_the_retry_runs(monkeypatch):
    caller = _funded()
    real = credits_api_views.credit_debit
    failures = iter([PaymentProviderError("provider down"), RuntimeError("bug")])

    def failing(**kwargs):
        raise next(failures)

    monkeypatch.setattr(credits_api_views, "credit_debit", failing)
    first = caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k5")
    assert first.status_code == 502 and not ApiIdempotencyKey.objects.filter(key="k5").exists()
    with pytest.raises(RuntimeError):
        caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k5")
    assert not ApiIdempotencyKey.objects.filter(key="k5").exists()

    monkeypatch.setattr(credits_api_views, "credit_debit", real)
    retry = caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k5")
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry
    assert credit_balance_get(customer=caller.customer) == 90


@pytest.mark.django_db(transaction=True)
def test_the_view_runs_with_its_key_committed_and_unlocked_and_outside_any_transaction(monkeypatch):
    caller = _funded()
    real = credits_api_views.credit_debit
    seen = {}

    def observing(**kwargs):
        seen["in_atomic_block"] = connection.in_atomic_block

        def look():  # another connection, as a concurrent request would have
            try:
                with transaction.atomic():
                    row = ApiIdempotencyKey.objects.select_for_update(nowait=True).get(key="k6")
                    seen["other_connection_sees"] = (row.response_status, row.locked_until is not None)
            finally:
                connection.close()

        run_threads([look])
        return real(**kwargs)

    monkeypatch.setattr(credits_api_views, "credit_debit", observing)
    response = caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k6")

    assert response.status_code == 201
    assert seen == {"in_atomic_block": False, "other_connection_sees": (None, True)}
    assert ApiIdempotencyKey.objects.get(key="k6").response_status == 201


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


@pytest.mark.django_db
def test_an_answer_echoing_a_nul_the_client_sent_is_stored_and_replayed_instead_of_failing():
    """A form field name with NUL in it comes back in the 400 that names it; jsonb refuses NUL, so the
    stored answer has it replaced, and the retry replays that answer instead of a 500."""
    client = staff_client()
    body = "bad\x00field=true&email=a%40example.com&name="
    headers = {"HTTP_IDEMPOTENCY_KEY": "nul-echo"}
    first = client.post("/api/v1/customers/", body, content_type="application/x-www-form-urlencoded", **headers)
    again = client.post("/api/v1/customers/", body, content_type="application/x-www-form-urlencoded", **headers)
    assert first.status_code == again.status_code == 400
    assert again.json() == ApiIdempotencyKey.objects.get(key="nul-echo").response_body
    assert "\x00" not in str(ApiIdempotencyKey.objects.get(key="nul-echo").response_body)
