"""The debit's lean path (credits/api/lean.py) answers exactly what the DRF view answers: a corpus of requests
is sent twice, once as it is and once with the lean path declining everything, and each pair must match in
status, body and headers. Each request's writes are rolled back and the rate-limit counts it made restored, so
both paths meet the same state; the throttles' clock is frozen so the windows and their resets agree."""

import json
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from rest_framework.authtoken.models import Token

from billing_project.tests.api_support import api_customer, token_client
from core.audit import Actor
from credits.api import lean
from credits.api.views import CreditsViewSet
from credits.services import credit_debit, credit_grant
from modules.services import module_disable
from subscriptions.api.throttling import WINDOWS
from subscriptions.tests.factories import CustomerFactory, StaffUserFactory

PATH = "/api/v1/credits/debit/"
FROZEN = 1_800_000_000.5
SYSTEM = Actor.system("test")


def _with_credits(caller, amount: int = 100):
    credit_grant(customer=caller.customer, amount=amount, source="purchase", actor=SYSTEM)
    return caller


def _headers_of(caller) -> dict:
    return {"HTTP_AUTHORIZATION": caller.client._credentials["HTTP_AUTHORIZATION"]}


@pytest.fixture
def world(db):
    caller = _with_credits(api_customer())
    credit_debit(customer=caller.customer, amount=3, actor=SYSTEM, idempotency_key="used")
    limited = _with_credits(api_customer(rate_limit_per_minute=1, rate_limit_per_hour=50))
    french = _with_credits(api_customer())
    french.customer.preferred_language = "fr"
    french.customer.save()
    revoked = api_customer()
    revoked_headers = _headers_of(revoked)
    Token.objects.filter(user=revoked.customer.user).delete()
    inactive = api_customer()
    inactive.customer.user.is_active = False
    inactive.customer.user.save()
    staff = StaffUserFactory()
    return {
        "caller": _headers_of(caller), "customer": caller.customer.pk, "other": CustomerFactory().pk,
        "limited": _headers_of(limited), "french": _headers_of(french), "revoked": revoked_headers,
        "inactive": _headers_of(inactive), "staff": {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=staff)}"},
        "no_access": _headers_of(api_customer(features=[])),
        "unsubscribed": _headers_of(api_customer(subscribed=False)),
        "customers": [caller.customer.pk, limited.customer.pk, french.customer.pk],
    }


def _json(body) -> bytes:
    return json.dumps(body).encode()


# (name, who, method, body, extra headers, whether the lean path answers it itself)
CORPUS = [
    ("debit", "caller", "post", _json({"amount": 5, "reason": "export", "idempotency_key": "k1"}), {}, True),
    ("debit, no key", "caller", "post", _json({"amount": 5}), {}, True),
    ("own customer named", "caller", "post", _json({"amount": 5, "customer": "{customer}"}), {}, True),
    ("replay", "caller", "post", _json({"amount": 3, "idempotency_key": "used"}), {}, True),
    ("replay, other amount", "caller", "post", _json({"amount": 4, "idempotency_key": "used"}), {}, True),
    ("short of credits", "caller", "post", _json({"amount": 10**6}), {}, True),
    ("short, in the customer's language", "french", "post", _json({"amount": 10**6}), {}, True),
    ("short, Accept-Language", "french", "post", _json({"amount": 10**6}), {"HTTP_ACCEPT_LANGUAGE": "de"}, True),
    ("Accept: json", "caller", "post", _json({"amount": 1}), {"HTTP_ACCEPT": "application/json"}, True),
    ("throttled", "limited", "post", _json({"amount": 1}), {}, True),
    ("too large to store", "caller", "post", _json({"amount": 2**63 - 1}), {}, True),
    ("a cookie", "caller", "post", _json({"amount": 1}), {"HTTP_COOKIE": "tracking=1"}, False),
    ("a language cookie", "french", "post", _json({"amount": 10**6}), {"HTTP_COOKIE": "django_language=de"}, False),
    ("Idempotency-Key header", "caller", "post", _json({"amount": 2}), {"HTTP_IDEMPOTENCY_KEY": "h1"}, False),
    ("another customer", "caller", "post", _json({"amount": 5, "customer": "{other}"}), {}, False),
    ("amount as text", "caller", "post", _json({"amount": "5"}), {}, False),
    ("amount zero", "caller", "post", _json({"amount": 0}), {}, False),
    ("no amount", "caller", "post", _json({"reason": "x"}), {}, False),
    ("padded reason", "caller", "post", _json({"amount": 1, "reason": " x "}), {}, False),
    ("NUL in reason", "caller", "post", _json({"amount": 1, "reason": "a\x00b"}), {}, False),
    ("NaN", "caller", "post", b'{"amount": NaN}', {}, False),
    ("not an object", "caller", "post", _json([1]), {}, False),
    ("malformed JSON", "caller", "post", b'{"amount":', {}, False),
    ("not UTF-8", "caller", "post", b'{"amount": 1, "reason": "\xff"}', {}, False),
    ("empty body", "caller", "post", b"", {}, False),
    ("form body", "caller", "post", b"amount=5", {"CONTENT_TYPE": "application/x-www-form-urlencoded"}, False),
    ("unsupported media", "caller", "post", b"amount", {"CONTENT_TYPE": "text/plain"}, False),
    ("JSON with a charset", "caller", "post", _json({"amount": 1}), {"CONTENT_TYPE": "application/json; charset=utf-8"},
     False),
    ("Accept: html", "caller", "post", _json({"amount": 1}), {"HTTP_ACCEPT": "text/html"}, False),
    ("Accept: nothing known", "caller", "post", _json({"amount": 1}), {"HTTP_ACCEPT": "image/png"}, False),
    ("format query", "caller", "post", _json({"amount": 1}), {"QUERY_STRING": "format=json"}, False),
    ("GET", "caller", "get", b"", {}, False),
    ("PUT", "caller", "put", _json({"amount": 1}), {}, False),
    ("OPTIONS", "caller", "options", b"", {}, False),
    ("no token", None, "post", _json({"amount": 1}), {}, False),
    ("bad token", None, "post", _json({"amount": 1}), {"HTTP_AUTHORIZATION": "Token nope"}, False),
    ("token with extra words", "caller", "post", _json({"amount": 1}), {"HTTP_AUTHORIZATION": "Token a b"}, False),
    ("bearer", None, "post", _json({"amount": 1}), {"HTTP_AUTHORIZATION": "Bearer abc"}, False),
    ("revoked token", "revoked", "post", _json({"amount": 1}), {}, False),
    ("inactive user", "inactive", "post", _json({"amount": 1}), {}, False),
    ("plan without api access", "no_access", "post", _json({"amount": 1}), {}, False),
    ("no subscription", "unsubscribed", "post", _json({"amount": 1}), {}, False),
    ("staff for a customer", "staff", "post", _json({"amount": 1, "customer": "{customer}"}), {}, False),
    ("staff naming nobody", "staff", "post", _json({"amount": 1}), {}, False),
]


def _request(world, who, method, body, extra):
    client = Client()
    headers = {**(world[who] if who else {}), **extra}
    query = headers.pop("QUERY_STRING", "")
    content_type = headers.pop("CONTENT_TYPE", "application/json")
    for name, value in (("{customer}", world["customer"]), ("{other}", world["other"])):
        body = body.replace(f'"{name}"'.encode(), str(value).encode())
    return getattr(client, method)(PATH + (f"?{query}" if query else ""), body, content_type=content_type, **headers)


def _rate_keys(world) -> list[str]:
    return [f"ratelimit:{customer}:{name}:{int(FROZEN // size)}" for customer in world["customers"]
            for name, size in WINDOWS]


def _answer(world, who, method, body, extra) -> tuple[int, object, dict]:
    """The answer, with what it wrote rolled back and the rate-limit counts as they were."""
    counts = {key: cache.get(key) for key in _rate_keys(world)}
    with transaction.atomic():
        response = _request(world, who, method, body, extra)
        transaction.set_rollback(True)
    for key, count in counts.items():
        cache.delete(key)
        if count is not None:
            cache.set(key, count, 3600)
    body, headers = _comparable(response.content), dict(response.headers)
    if isinstance(body, dict) and body.get("entry", {}).get("id") == "<new>":
        headers["Content-Length"] = "<as long as the new row's id>"
    return response.status_code, body, headers


def _comparable(content: bytes):
    """The body with the new ledger row's id and time blanked (a sequence and the clock are not rolled back);
    the browsable API's page carries a fresh CSRF token each time, so only its being a page is compared."""
    if content.lstrip().startswith(b"<!DOCTYPE html>"):
        return "<page>"
    try:
        body = json.loads(content)
    except ValueError:
        return content
    if isinstance(body, dict) and isinstance(body.get("entry"), dict) and not body.get("replayed"):
        body["entry"] = {**body["entry"], "id": "<new>", "created_at": "<now>"}
    return body


@pytest.fixture
def frozen_throttle_clock():
    with mock.patch("subscriptions.api.throttling.time.time", return_value=FROZEN):
        yield


@pytest.mark.usefixtures("frozen_throttle_clock")
@pytest.mark.parametrize(("name", "who", "method", "body", "extra", "lean_answers"), CORPUS,
                         ids=[case[0] for case in CORPUS])
def test_the_lean_path_answers_what_the_drf_view_answers(world, name, who, method, body, extra, lean_answers):
    with mock.patch.object(CreditsViewSet, "dispatch", autospec=True, side_effect=CreditsViewSet.dispatch) as drf:
        lean_answer = _answer(world, who, method, body, extra)
    assert drf.called != lean_answers
    with mock.patch.object(lean, "_common_case", return_value=None):
        drf_answer = _answer(world, who, method, body, extra)

    assert lean_answer == drf_answer


@pytest.mark.usefixtures("frozen_throttle_clock")
def test_a_disabled_credits_module_answers_the_same_404_on_both_paths(world):
    module_disable(code="credits", actor=SYSTEM)
    body = _json({"amount": 1})

    lean_answer = _answer(world, "caller", "post", body, {})
    with mock.patch.object(lean, "_common_case", return_value=None):
        drf_answer = _answer(world, "caller", "post", body, {})

    assert lean_answer[0] == 404 and lean_answer[1]["error"]["code"] == "module_disabled"
    assert lean_answer == drf_answer


@pytest.mark.django_db
def test_the_lean_path_counts_a_request_against_the_plan_limits_once():
    caller = _with_credits(api_customer(rate_limit_per_minute=10))
    client = token_client(caller.customer.user)

    answers = [client.post(PATH, {"amount": 1}, format="json") for _ in range(3)]

    assert [a.status_code for a in answers] == [201] * 3
    assert [a["X-RateLimit-Remaining"] for a in answers] == ["9", "8", "7"]
