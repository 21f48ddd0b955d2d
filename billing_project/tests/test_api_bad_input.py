"""No input answers 500: every route of the router, walked with what PostgreSQL cannot store.

Routes, filters and ordering fields are read from the router and the views, so a new endpoint or filter
is walked without being listed here. Every refusal is in the API's error shape and stores nothing.
"""

import base64
import json
import re
from urllib.parse import quote, urlencode

import pytest
from django.apps import apps
from django_filters import filters as filter_types
from rest_framework.test import APIClient

from billing_project.api.router import router
from billing_project.tests.api_support import api_customer, staff_client
from usage.tests.factories import MeterFactory

HOSTILE_TEXT = ["a\x00b", "\ud800"]
OUT_OF_RANGE_INSTANTS = [
    "2026-01-01T00:00:00+16:00",  # PostgreSQL: time zone displacement out of range
    "2026-01-01T00:00:00-17:00",
    "2026-01-01T00:00:00+23:59",
    "0001-01-01T00:00:00+01:00",  # 1 BC in UTC: stored, but psycopg cannot read it back
    "9999-12-31T23:00:00-05:00",  # year 10000 in UTC
    "0001-01-01T00:00:00Z",
]
HUGE_NUMBERS = ["99999999999999999999", "-99999999999999999999", "9223372036854775808", "1e999999", "NaN",
                "Infinity"]


def _assert_error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}
    assert {"type", "code", "message", "fields"} <= set(body["error"])
    return body["error"]


def _routes():
    """(path, {method: action}, view class) of every route of the router, `{pk}` in detail paths."""
    for pattern in router.urls:
        regex = str(pattern.pattern)
        actions = getattr(pattern.callback, "actions", None)
        if not actions or "<format>" in regex:
            continue
        path = "/api/v1/" + re.sub(r"\(\?P<pk>[^)]*\)", "{pk}", regex).lstrip("^").rstrip("$")
        yield path, dict(actions), pattern.callback.cls


LIST_ROUTES = [(path, cls) for path, actions, cls in _routes() if "{pk}" not in path and "get" in actions]
# Lists read page by page through a cursor; a CSV export streams every row and reads no cursor.
PAGINATED_ROUTES = [(path, cls) for path, actions, cls in _routes() if "{pk}" not in path and "get" in actions
                    and getattr(getattr(cls, actions["get"]), "kwargs", {}).get(
                        "pagination_class", cls.pagination_class) is not None]
DETAIL_ROUTES = [(path, method) for path, actions, _ in _routes() if "{pk}" in path
                 for method in actions if method != "head"]
POST_ROUTES = [path for path, actions, _ in _routes() if "post" in actions]


def _query_params(cls) -> dict[str, str]:
    """Every query parameter the view's filterset reads, with the filter's kind."""
    params = {}
    for name, filter_ in getattr(cls, "filterset_class", None).base_filters.items() if getattr(
            cls, "filterset_class", None) else ():
        if isinstance(filter_, filter_types.IsoDateTimeFromToRangeFilter):
            params.update({f"{name}_after": "instant", f"{name}_before": "instant"})
        elif isinstance(filter_, filter_types.RangeFilter):
            params.update({f"{name}_min": "number", f"{name}_max": "number"})
        elif isinstance(filter_, filter_types.NumberFilter):
            params[name] = "number"
        elif isinstance(filter_, filter_types.IsoDateTimeFilter | filter_types.DateTimeFilter):
            params[name] = "instant"
        else:
            params[name] = "text"
    return params


FILTER_CASES = [(path, param, kind) for path, actions, cls in _routes() if actions.get("get") == "list"
                for param, kind in _query_params(cls).items()]


def _row_counts() -> dict[str, int]:
    """Rows of every domain table; an Idempotency-Key's record of a 4xx answer is the documented replay
    of that answer (docs/api.md), not something the request stored."""
    return {model._meta.label: model.objects.count() for model in apps.get_models()
            if model._meta.app_label in {"subscriptions", "credits", "usage", "payments", "authtoken"}
            and model._meta.label != "subscriptions.ApiIdempotencyKey"}


@pytest.fixture
def callers(db):
    me = api_customer()
    MeterFactory(code="m")
    return {"customer": me.client, "staff": staff_client()}


# Lists only staff may read (the merchant's webhook settings): a customer is refused before any filter.
STAFF_ONLY_LISTS = {"/api/v1/webhook-endpoints/", "/api/v1/webhook-deliveries/"}


def test_the_walk_reaches_every_list_filter_and_write():
    assert len(LIST_ROUTES) >= 12 and len(POST_ROUTES) >= 15
    kinds = {kind for _, _, kind in FILTER_CASES}
    assert kinds == {"instant", "number", "text"}


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "param", "kind"), FILTER_CASES)
def test_every_filter_refuses_what_the_database_cannot_compare(callers, path, param, kind):
    hostile = {"instant": OUT_OF_RANGE_INSTANTS, "number": HUGE_NUMBERS, "text": []}[kind] + HOSTILE_TEXT
    for who, client in callers.items():
        if who == "customer" and path in STAFF_ONLY_LISTS:
            assert client.get(f"{path}?{param}=1").status_code == 403  # refused before any filter is read
            continue
        for value in hostile:
            response = client.get(f"{path}?{param}={quote(value, safe='', errors='surrogatepass')}")
            if value == "\ud800":
                # A query string is bytes: the surrogate cannot even be encoded, so it arrives replaced.
                assert response.status_code in (200, 400), (who, param, response.content[:300])
                continue
            _assert_error(response, 400)


@pytest.mark.django_db
@pytest.mark.parametrize("path", [path for path, _ in LIST_ROUTES])
def test_nul_in_any_query_parameter_or_header_is_400(callers, path):
    client = callers["staff"]
    _assert_error(client.get(path, {"ordering": "id\x00"}), 400)
    _assert_error(client.get(path, {"anything": "x"}, headers={"X-Trace": "a\x00b"}), 400)
    _assert_error(client.get(path, headers={"X-Trace": "\ud800"}), 400)


def _cursor(position: str) -> str:
    return base64.b64encode(urlencode({"p": position}).encode()).decode()


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "ordering"), [
    (path, field) for path, cls in PAGINATED_ROUTES if getattr(cls, "ordering_fields", None)
    for field in cls.ordering_fields])
def test_crafted_cursors_are_invalid_cursors_never_errors(callers, path, ordering):
    for position in ["abc", "99999999999999999999", "1e999999", "NaN", "0001-01-01 00:00:00+01:00",
                     "2026-01-01 00:00:00+17:00", "a\x00b", ""]:
        response = callers["staff"].get(path, {"ordering": f"-{ordering}", "cursor": _cursor(position)})
        assert response.status_code in (200, 404), (position, response.content[:300])
        if response.status_code == 404:
            assert _assert_error(response, 404)["type"] == "not_found"
    _assert_error(callers["staff"].get(path, {"cursor": "%%%not base64"}), 404)


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method"), DETAIL_ROUTES)
def test_ids_past_bigint_or_not_numbers_are_404(callers, path, method):
    for pk in ["99999999999999999999", "-1", "1e3", "%00"]:
        response = getattr(callers["staff"], method)(path.format(pk=pk), {}, format="json")
        assert response.status_code in (400, 404), (path, pk, response.content[:300])
        _assert_error(response, response.status_code)


HOSTILE_BODIES = {
    "nul in a value": '{"reason": "a\\u0000b", "pack": "x\\u0000", "metadata": {"k": "\\u0000"}}',
    "nul in a key": '{"metadata": {"a\\u0000": 1}}',
    "lone surrogate": '{"reason": "\\ud800", "name": "\\udfff"}',
    "NaN": '{"amount": NaN, "quantity": NaN}',
    "Infinity": '{"amount": Infinity}',
    "deep nesting": '{"metadata": ' + "[" * 100 + "]" * 100 + "}",
    "deeper than the stack": "[" * 100_000 + "]" * 100_000,
    "not UTF-8": b'{"reason": "\xff\xfe"}',
}


@pytest.mark.django_db
@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=list(HOSTILE_BODIES))
def test_every_write_refuses_unstorable_json_and_stores_nothing(callers, path, body):
    client = callers["staff"]
    before = _row_counts()
    for headers in ({}, {"Idempotency-Key": f"k-{body}"}):
        response = client.post(path.format(pk=1), HOSTILE_BODIES[body], content_type="application/json",
                               headers=headers)
        assert response.status_code in (400, 404), (path, response.content[:300])
        _assert_error(response, response.status_code)
    assert _row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("path", POST_ROUTES)
def test_every_write_refuses_nul_in_form_bodies_and_headers(callers, path):
    client = callers["staff"]
    before = _row_counts()
    for body, content_type in (({"reason": "a\x00b"}, None), ("reason=a%00b", "application/x-www-form-urlencoded")):
        response = (client.post(path.format(pk=1), body, format="multipart") if content_type is None
                    else client.post(path.format(pk=1), body, content_type=content_type))
        # A detail route may look its object (there is none) up before reading the body.
        assert response.status_code in (400, 404), response.content[:300]
        _assert_error(response, response.status_code)
    _assert_error(client.post(path.format(pk=1), {}, format="json", headers={"Idempotency-Key": "k\x00"}), 400)
    _assert_error(APIClient().post(path.format(pk=1), {}, format="json",
                                   headers={"Authorization": "Token a\x00b"}), 400)
    assert _row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("path", POST_ROUTES)
def test_bodies_over_the_limit_are_413_with_or_without_an_idempotency_key(callers, path, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"reason": "x" * 2000})
    before = _row_counts()
    for headers in ({}, {"Idempotency-Key": "big-1"}):
        error = _assert_error(callers["customer"].post(path.format(pk=1), body, content_type="application/json",
                                                headers=headers), 413)
        assert (error["type"], error["code"]) == ("invalid_request", "request_too_large")
    assert _row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/credits/grants/", {"customer": "{me}", "amount": 2**63}, "amount"),
    ("/api/v1/credits/grants/", {"customer": 2**64, "amount": 1}, "customer"),
    ("/api/v1/credits/grants/", {"customer": "{me}", "amount": 1, "expires_at": "0001-01-01T00:00:00+01:00"},
     "expires_at"),
    ("/api/v1/credits/grants/", {"customer": "{me}", "amount": 1, "effective_at": "2026-01-01T00:00:00+16:00"},
     "effective_at"),
    ("/api/v1/credits/grants/", {"customer": "{me}", "amount": 1, "priority": 2**40}, "priority"),
    ("/api/v1/credits/debit/", {"customer": "{me}", "amount": 10**30}, "amount"),
    ("/api/v1/subscriptions/", {"customer": "{me}", "plan": 10**30}, "plan"),
    ("/api/v1/subscriptions/", {"customer": -(10**30), "plan": 1}, "customer"),
    ("/api/v1/usage/events/", {"customer": 10**30, "meter": "m", "idempotency_key": "k"}, "customer"),
    ("/api/v1/usage/events/", {"customer": "{me}", "meter": "m", "idempotency_key": "k",
                               "occurred_at": "0001-01-01T00:00:00+01:00"}, "events"),
    ("/api/v1/usage/events/", {"customer": "{me}", "meter": "m", "idempotency_key": "k",
                               "occurred_at": "2026-01-01T00:00:00+17:00"}, "events"),
    ("/api/v1/usage/events/", {"customer": "{me}", "meter": "m", "idempotency_key": "k", "properties": None},
     "events"),
    ("/api/v1/usage/events/", {"customer": "{me}", "meter": "m", "idempotency_key": "k", "quantity": "1e999999"},
     "events"),
    ("/api/v1/plans/", {"code": "p", "name": "P", "amount": 2**63, "currency": "USD"}, "amount"),
    ("/api/v1/plans/", {"code": "p", "name": "P", "amount": 1, "currency": "USD", "trial_days": 10**6},
     "trial_days"),
    ("/api/v1/customers/", {"name": "n", "email": "a@example.com", "metadata": None}, "metadata"),
    ("/api/v1/customers/", {"name": "n", "email": "a@example.com", "metadata": [1]}, "metadata"),
    ("/api/v1/customers/", {"name": "n", "email": "a@example.com", "metadata": "x"}, "metadata"),
    ("/api/v1/customers/", {"name": "n", "email": "not an email"}, "email"),
    ("/api/v1/payments/1/refund/", {"amount": 10**30}, None),
])
def test_out_of_range_body_values_are_field_errors(path, body, field):
    me = api_customer()
    MeterFactory(code="m")
    body = {k: me.customer.pk if v == "{me}" else v for k, v in body.items()}
    staff = staff_client()
    before = _row_counts()
    response = staff.post(path, body, format="json")
    if field is None:  # the payment does not exist: the id is looked up before the body
        _assert_error(response, 404)
    else:
        assert field in _assert_error(response, 400)["fields"]
    assert _row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("metadata", [None, [1], "x", 1])
def test_customer_metadata_must_be_an_object(metadata):
    me = api_customer()
    response = me.client.patch(f"/api/v1/customers/{me.customer.pk}/", {"metadata": metadata}, format="json")
    assert "metadata" in _assert_error(response, 400)["fields"]
    me.customer.refresh_from_db()
    assert me.customer.metadata == {}


@pytest.mark.django_db
@pytest.mark.parametrize("query", [
    {"start": "0001-01-01T00:00:00+01:00", "end": "2026-01-01T00:00:00Z"},
    {"start": "2026-01-01T00:00:00+16:00", "end": "2026-02-01T00:00:00Z"},
    {"customer": "99999999999999999999"},
])
@pytest.mark.parametrize("path", ["/api/v1/usage/summary/", "/api/v1/credits/balance/", "/api/v1/entitlements/"])
def test_query_serializers_bound_their_values(path, query):
    response = staff_client().get(path, query)
    assert response.status_code in (400, 404), response.content
    if "customer" in query:
        assert "customer" in _assert_error(response, 400)["fields"]
