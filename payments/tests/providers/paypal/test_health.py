import pytest
from django.core.cache import cache

from payments.providers.paypal import client as paypal_client

pytestmark = pytest.mark.django_db


def test_healthz_has_a_paypal_section_that_says_it_is_not_configured(client, settings):
    settings.PAYPAL_CLIENT_ID = settings.PAYPAL_CLIENT_SECRET = settings.PAYPAL_WEBHOOK_ID = ""
    body = client.get("/healthz").json()
    section = body["modules"]["paypal"]
    assert section["status"] == "ok" and section["details"]["configured"] is False


def test_keys_without_a_webhook_id_are_degraded_but_keep_http_200(client, paypal_api, settings):
    settings.PAYPAL_WEBHOOK_ID = ""
    response = client.get("/healthz")
    section = response.json()["modules"]["paypal"]
    assert response.status_code == 200
    assert section["status"] == "degraded" and "PAYPAL_WEBHOOK_ID is missing" in section["message"]


def _deep(client) -> dict:
    response = client.get("/healthz?deep=1")
    assert response.status_code == 200  # a rail never takes the instance out of service
    return response.json()["modules"]["paypal"]


def test_deep_health_makes_one_authenticated_call_and_reports_its_latency(client, paypal_api, settings):
    # An earlier test's token may still be cached, or held by the SDK client this process built: fetch our own.
    cache.delete(paypal_client._token_cache_key(settings.PAYPAL_CLIENT_ID, settings.PAYPAL_API_BASE))
    paypal_client._build_client.cache_clear()
    tokens_before = paypal_api.token_requests
    section = _deep(client)
    assert section["status"] == "ok", section
    assert section["details"]["api"]["status"] == "ok" and section["details"]["api"]["latency_ms"] >= 0
    assert paypal_api.token_requests == tokens_before + 1  # the OAuth token was fetched (and is now cached)
    [call] = paypal_api.requests
    assert call["method"] == "GET"


def test_shallow_health_makes_no_call(client, paypal_api):
    section = client.get("/healthz").json()["modules"]["paypal"]
    assert "api" not in section["details"] and paypal_api.requests == []


def test_refused_credentials_report_the_rail_down_without_raising(client, paypal_api, settings):
    settings.PAYPAL_CLIENT_SECRET = "not-the-secret"
    section = _deep(client)
    assert section["status"] == "down" and section["details"]["api"]["status"] == "error"
    assert "rejected our credentials" in section["message"]


@pytest.mark.parametrize("mode", ["server_error", "timeout"])
def test_a_failing_or_hanging_paypal_is_reported_degraded_within_the_configured_timeout(client, paypal_api, mode):
    paypal_api.fail_next(mode)
    section = _deep(client)
    assert section["status"] == "degraded" and section["details"]["api"]["status"] == "degraded", section
    # PAYPAL_TIMEOUT (1 s here) ends the wait before the peer's 3 s hang answers its 500.
    expected = "did not answer" if mode == "timeout" else "Internal service error"
    assert "authenticated call degraded" in section["message"] and expected in section["message"], section


def test_an_unconfigured_paypal_is_not_called_even_when_deep(client, settings):
    settings.PAYPAL_CLIENT_ID = settings.PAYPAL_CLIENT_SECRET = ""
    section = _deep(client)
    assert section["status"] == "ok" and "api" not in section["details"]
