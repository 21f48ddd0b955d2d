"""Every 4xx answers {"error": {"type", "code", "message", "fields"}}; no input gives a 500."""

import pytest
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from billing_project.tests.api_support import api_customer
from core.api.errors import api_exception_handler
from usage.tests.factories import MeterFactory


def _assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert {"type", "code", "message", "fields"} <= set(body["error"])
    return body["error"]


@pytest.mark.django_db
def test_missing_credentials_are_an_authentication_error():
    error = _assert_error(APIClient().get("/api/v1/invoices/"), 401)
    assert error["type"] == "authentication_error"
    assert error["code"] == "not_authenticated"


@pytest.mark.django_db
def test_validation_errors_carry_drf_field_errors():
    caller = api_customer()
    error = _assert_error(caller.client.post("/api/v1/credits/debit/", {"amount": 0}, format="json"), 400)
    assert error["type"] == "invalid_request"
    assert error["code"] == "invalid"
    assert list(error["fields"]) == ["amount"]


@pytest.mark.django_db
def test_insufficient_credits_is_402_with_the_balance():
    caller = api_customer()
    error = _assert_error(caller.client.post("/api/v1/credits/debit/", {"amount": 5}, format="json"), 402)
    assert error["code"] == "insufficient_credits"
    assert error["details"]["balance"] == 0


@pytest.mark.django_db
def test_illegal_state_moves_are_409():
    caller = api_customer()
    error = _assert_error(caller.client.post(f"/api/v1/subscriptions/{caller.subscription.pk}/resume/", {},
                                      format="json"), 409)
    assert (error["type"], error["code"]) == ("billing_error", "nothing_to_resume")


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("get", "/api/v1/invoices/999999/", None, 404),
    ("delete", "/api/v1/usage/events/1/", None, 405),
    ("get", "/api/v1/invoices/?created_after=yesterday", None, 400),
    ("get", "/api/v1/invoices/?status=bogus", None, 400),
    ("get", "/api/v1/invoices/?cursor=not-a-cursor", None, 404),
    ("get", "/api/v1/usage/summary/?start=2026-01-02T00:00:00Z", None, 400),
    ("get", "/api/v1/credits/balance/?customer=abc", None, 400),
    ("post", "/api/v1/usage/events/", [1, 2], 400),
    ("post", "/api/v1/usage/events/", {"events": "no"}, 400),
    ("post", "/api/v1/usage/events/", {"events": [{"meter": 5, "idempotency_key": ""}]}, 400),
    ("post", "/api/v1/usage/events/", {"meter": "m", "idempotency_key": "k", "quantity": "NaN"}, 400),
    ("post", "/api/v1/usage/events/", {"meter": "m", "idempotency_key": "k", "quantity": "1e30"}, 400),
    ("post", "/api/v1/usage/events/", {"meter": "m", "idempotency_key": "k", "occurred_at": "soon"}, 400),
    ("post", "/api/v1/usage/events/", {"meter": "m", "idempotency_key": "k", "properties": []}, 400),
    ("post", "/api/v1/subscriptions/", {"plan": "x"}, 400),
    ("post", "/api/v1/credits/debit/", {"amount": "lots"}, 400),
])
def test_bad_input_answers_4xx_in_the_error_shape(method, path, body, status):
    caller = api_customer()
    MeterFactory(code="m")
    response = getattr(caller.client, method)(path, body, format="json") if body is not None else \
        getattr(caller.client, method)(path)
    _assert_error(response, status)


@pytest.mark.django_db
def test_malformed_json_is_a_parse_error():
    caller = api_customer()
    response = caller.client.post("/api/v1/usage/events/", "{not json", content_type="application/json")
    error = _assert_error(response, 400)
    assert error["code"] == "parse_error"


def _database_error(statement: str) -> Exception:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    except DatabaseError as exc:
        return exc
    raise AssertionError(f"{statement!r} did not fail")


@pytest.mark.django_db
@pytest.mark.parametrize("statement", [
    # A unique row another request inserted first.
    "CREATE TEMP TABLE t (k int UNIQUE); INSERT INTO t VALUES (1), (1)",
    # What a lost race raises from PostgreSQL: serialization failure, deadlock, lock wait cut short.
    "DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = 'serialization_failure'; END $$",
    "DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = 'deadlock_detected'; END $$",
    "DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = 'lock_not_available'; END $$",
])
def test_database_conflicts_of_concurrent_writers_are_409_conflict(statement):
    response = api_exception_handler(_database_error(statement), {})
    assert response.status_code == 409
    assert (response.data["error"]["type"], response.data["error"]["code"]) == ("billing_error", "conflict")


@pytest.mark.django_db
def test_other_database_errors_stay_server_errors():
    assert api_exception_handler(_database_error("SELECT 1/0"), {}) is None


@pytest.mark.django_db
@pytest.mark.parametrize("statement", [
    # A total summed past a bigint column, and a date moved past the calendar's end.
    "SELECT 9223372036854775807::bigint + 1",
    "SELECT make_timestamp(294277, 1, 1, 0, 0, 0)",
])
def test_totals_past_what_a_column_stores_are_400_out_of_range(statement):
    response = api_exception_handler(_database_error(statement), {})
    assert response.status_code == 400
    assert (response.data["error"]["type"], response.data["error"]["code"]) == ("invalid_request", "out_of_range")
