"""API tokens are checked through the cache (subscriptions/api/tokens.py): no query per request, and
revoking a token or deactivating its user still takes effect on the very next request."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from billing_project.tests.api_support import api_customer, token_client
from subscriptions.api.tokens import _cache_key
from subscriptions.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

BALANCE = "/api/v1/plans/"


def _token_of(caller) -> Token:
    return Token.objects.get(user=caller.customer.user)


def test_a_known_token_reads_no_token_row_after_its_first_request():
    caller = api_customer()
    assert caller.client.get(BALANCE).status_code == 200

    with CaptureQueriesContext(connection) as context:
        assert caller.client.get(BALANCE).status_code == 200

    assert not [q for q in context.captured_queries if "authtoken_token" in q["sql"]]


def test_a_deleted_token_is_refused_on_the_next_request():
    caller = api_customer()
    assert caller.client.get(BALANCE).status_code == 200

    _token_of(caller).delete()

    assert caller.client.get(BALANCE).status_code == 401


def test_a_deactivated_user_is_refused_on_the_next_request():
    caller = api_customer()
    assert caller.client.get(BALANCE).status_code == 200
    user = caller.customer.user

    user.is_active = False
    user.save(update_fields=["is_active"])

    response = caller.client.get(BALANCE)
    assert response.status_code == 401


def test_a_deleted_user_is_refused_on_the_next_request():
    caller = api_customer()
    assert caller.client.get(BALANCE).status_code == 200

    get_user_model().objects.filter(pk=caller.customer.user.pk).delete()

    assert caller.client.get(BALANCE).status_code == 401


def test_staff_who_lose_staff_status_are_customers_on_the_next_request():
    api_customer()
    staff = StaffUserFactory()
    client = token_client(staff)
    assert client.get("/api/v1/customers/").json()["results"]

    staff.is_staff = False
    staff.save()

    assert client.get("/api/v1/customers/").json()["results"] == []


def test_a_rotated_token_refuses_the_old_key_and_accepts_the_new():
    caller = api_customer()
    assert caller.client.get(BALANCE).status_code == 200
    old = _token_of(caller)

    old.delete()
    new = Token.objects.create(user=caller.customer.user)

    assert caller.client.get(BALANCE).status_code == 401
    caller.client.credentials(HTTP_AUTHORIZATION=f"Token {new.key}")
    assert caller.client.get(BALANCE).status_code == 200


def test_the_cache_holds_neither_the_key_nor_the_password_hash():
    caller = api_customer()
    caller.client.get(BALANCE)
    token = _token_of(caller)

    until, cached = cache.get(_cache_key(token.key))

    assert until > time.time() and cached["id"] == caller.customer.user.pk
    assert "password" not in cached
    assert token.key not in _cache_key(token.key)


@pytest.mark.django_db(transaction=True)
def test_a_revocation_is_forgotten_again_after_its_commit():
    """A request that read the token row before the revoking transaction committed and cached it after the
    first forget must not outlive the commit."""
    caller = api_customer()
    token = _token_of(caller)
    with transaction.atomic():
        Token.objects.filter(pk=token.pk).delete()
        # The other request's late fill.
        cache.set(_cache_key(token.key), (time.time() + 30, {"id": caller.customer.user.pk}), 30)
    assert cache.get(_cache_key(token.key)) is None
    assert caller.client.get(BALANCE).status_code == 401


def test_writes_that_bypass_the_models_are_seen_at_once_with_the_cache_off(settings):
    settings.API_TOKEN_CACHE_SECONDS = 0
    caller = api_customer()
    assert caller.client.get(BALANCE).status_code == 200

    get_user_model().objects.filter(pk=caller.customer.user.pk).update(is_active=False)

    assert caller.client.get(BALANCE).status_code == 401


def test_an_unknown_token_is_refused_and_not_cached():
    client = token_client(StaffUserFactory())
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert client.get(BALANCE).status_code == 401
    assert cache.get(_cache_key("not-a-real-token")) is None


@pytest.mark.django_db(transaction=True)
def test_a_token_revoked_by_another_process_is_refused_once_this_process_checks_for_changes(settings):
    """Each process remembers token holders (subscriptions/api/callers.py) and asks the cache whether any
    changed every API_CALLERS_CHECK_SECONDS; another process's revocation (here: the row deleted without
    this process's signals, the shared entry forgotten and the version bumped as that process does) is seen
    at that check, not before."""
    caller = api_customer()
    assert caller.client.get(BALANCE).status_code == 200
    token = _token_of(caller)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM authtoken_token WHERE key = %s", [token.key])
    cache.delete(_cache_key(token.key))
    cache.set("memo-version:api-callers", "bumped by another process", None)

    assert caller.client.get(BALANCE).status_code == 200  # within the interval: remembered
    settings.API_CALLERS_CHECK_SECONDS = 0
    assert caller.client.get(BALANCE).status_code == 401
