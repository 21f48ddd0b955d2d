"""An exhausted database pool answers 503 with Retry-After (not 500), on every door."""

import threading

import pytest
from django.db import connection
from psycopg_pool import PoolTimeout
from rest_framework.test import APIClient

from core.server_errors import server_error


@pytest.fixture
def exhausted_pool(monkeypatch):
    """Every connection of this process's pool borrowed, and a short wait for the next one."""
    connection.ensure_connection()
    pool = connection.pool
    assert pool is not None, "the tests run with the PostgreSQL pool on, as production does"
    held = []
    try:
        while True:
            held.append(pool.getconn(timeout=3))
    except PoolTimeout:
        pass
    monkeypatch.setattr(pool, "timeout", 0.2)
    yield
    for conn in held:
        pool.putconn(conn)


def _in_a_fresh_thread(request):
    """Django gives each thread its own connection, so a request in a new thread must borrow one."""
    answers = []
    thread = threading.Thread(target=lambda: answers.append(request(APIClient(raise_request_exception=False))))
    thread.start()
    thread.join(timeout=30)
    return answers[0]


@pytest.mark.django_db
def test_a_request_that_waits_too_long_for_a_connection_answers_503_with_retry_after(exhausted_pool):
    api = _in_a_fresh_thread(lambda c: c.get("/api/v1/invoices/", HTTP_AUTHORIZATION="Token " + "a" * 40))
    admin = _in_a_fresh_thread(lambda c: c.get("/admin/", HTTP_COOKIE="sessionid=" + "b" * 32))

    for response in (api, admin):
        assert response.status_code == 503
        assert response["Retry-After"] == "1"
    assert api.json()["error"]["code"] == "database_busy"


@pytest.mark.django_db
def test_other_uncaught_errors_stay_500(rf):
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        response = server_error(rf.get("/"))

    assert response.status_code == 500
