"""Password guesses are limited per username and per client address, at the API token endpoint and the
admin login alike (one set of counters), and a throttled caller is refused even the right password."""

import pytest
from django.test import RequestFactory
from rest_framework.authtoken.models import Token

from billing_project.tests.threads import race
from core.api.throttling import LoginUsernameRateThrottle, client_address, login_attempt_wait
from subscriptions.tests.factories import StaffUserFactory, UserFactory

TOKEN_URL = "/api/v1/auth/token/"
ADMIN_LOGIN_URL = "/admin/login/"
PASSWORD = "pass-word-123"  # UserFactory's


@pytest.fixture(autouse=True)
def _small_limits(settings):
    settings.LOGIN_THROTTLE_USERNAME_RATE = "3/hour"
    settings.LOGIN_THROTTLE_IP_RATE = "5/hour"
    settings.LOGIN_THROTTLE_TRUSTED_PROXIES = 0


def _token(client, username, password="wrong", **extra):
    return client.post(TOKEN_URL, {"username": username, "password": password}, content_type="application/json",
                       **extra)


@pytest.mark.django_db
def test_wrong_guesses_then_429_and_then_even_the_right_password_is_refused(client):
    user = UserFactory(username="alice")
    statuses = [_token(client, "alice").status_code for _ in range(3)]
    throttled = _token(client, "alice", PASSWORD)

    assert statuses == [400, 400, 400]
    assert throttled.status_code == 429
    error = throttled.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "throttled")
    assert 1 <= int(throttled["Retry-After"]) <= 3600
    assert error["details"]["retry_after"] == int(throttled["Retry-After"])
    assert not Token.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_another_username_is_allowed_until_the_address_limit(client):
    UserFactory(username="bob")
    for _ in range(3):
        _token(client, "alice")
    assert _token(client, "alice").status_code == 429  # the 4th attempt from this address
    assert _token(client, "bob", PASSWORD).status_code == 200  # the 5th: the address allows five
    assert _token(client, "bob", PASSWORD).status_code == 429  # the 6th is over the address limit
    # The same guesses from another address still meet the username limit.
    assert _token(client, "alice", REMOTE_ADDR="198.51.100.7").status_code == 429


@pytest.mark.django_db
def test_case_and_spacing_variants_of_a_username_share_one_budget(client):
    for username in ("Alice", " alice ", "ALICE"):
        assert _token(client, username).status_code == 400
    assert _token(client, "alice", REMOTE_ADDR="198.51.100.8").status_code == 429


@pytest.mark.django_db
def test_a_number_for_a_username_counts_against_that_username(client):
    UserFactory(username="123")
    for _ in range(3):
        _token(client, 123)
    assert _token(client, "123", PASSWORD, REMOTE_ADDR="198.51.100.9").status_code == 429


@pytest.mark.django_db
def test_a_forged_x_forwarded_for_does_not_buy_new_addresses(client):
    statuses = [_token(client, f"user{n}", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(6)]
    assert statuses == [400] * 5 + [429]


def test_behind_a_trusted_proxy_the_address_it_saw_is_the_client(settings):
    settings.LOGIN_THROTTLE_TRUSTED_PROXIES = 1
    request = RequestFactory().post("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.9")
    assert client_address(request) == "203.0.113.9"
    settings.LOGIN_THROTTLE_TRUSTED_PROXIES = 0
    assert client_address(request) == "10.0.0.2"


def test_an_ipv6_caller_is_counted_per_64_block():
    one = RequestFactory().post("/", REMOTE_ADDR="2001:db8:1:2::1")
    other = RequestFactory().post("/", REMOTE_ADDR="2001:db8:1:2:ffff::9")
    assert client_address(one) == client_address(other) == "2001:db8:1:2::/64"


@pytest.mark.django_db
def test_the_admin_login_is_limited_the_same_way_and_shares_the_counters(client):
    StaffUserFactory(username="root", password=PASSWORD)
    form = {"username": "root", "password": "wrong", "next": "/admin/"}
    assert [client.post(ADMIN_LOGIN_URL, form).status_code for _ in range(2)] == [200, 200]  # the form again
    assert _token(client, "root").status_code == 400  # the third attempt, through the API
    throttled = client.post(ADMIN_LOGIN_URL, {**form, "password": PASSWORD})
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in throttled.content.decode()
    assert "_auth_user_id" not in client.session
    # Looking at the page is no attempt.
    assert client.get(ADMIN_LOGIN_URL).status_code == 200


@pytest.mark.django_db
def test_the_admin_login_still_signs_in_below_the_limit(client):
    StaffUserFactory(username="root", password=PASSWORD)
    response = client.post(ADMIN_LOGIN_URL, {"username": "root", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"]


def test_concurrent_guesses_never_get_past_the_limit():
    def attempt():
        request = RequestFactory().post("/", {"username": "carol"}, REMOTE_ADDR="192.0.2.1")
        return LoginUsernameRateThrottle().allow_request(request, None)

    outcome = race([attempt] * 12)
    assert outcome.errors == []
    assert sorted(outcome.results) == [False] * 9 + [True] * 3


def test_an_attempt_without_a_username_counts_against_the_address_only():
    request = RequestFactory().post("/", {"password": "x"}, REMOTE_ADDR="192.0.2.2")
    assert [login_attempt_wait(request=request) for _ in range(5)] == [None] * 5
    assert login_attempt_wait(request=request) >= 1
