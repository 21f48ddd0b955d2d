"""The Stripe section of /healthz?deep=1: one authenticated call, its outcome and latency, as PayPal's."""

import pytest

from payments.providers.stripe import gateway
from payments.tests.providers.contract.rails import FailingPeer
from payments.tests.stripe_support import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db


def _deep(client) -> dict:
    response = client.get("/healthz?deep=1")
    assert response.status_code == 200
    return response.json()["modules"]["stripe"]


def test_deep_health_reports_the_authenticated_call_ok_with_its_latency(client, stripe_api, settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    section = _deep(client)
    assert section["status"] == "ok", section
    assert section["details"]["api"]["status"] == "ok" and section["details"]["api"]["latency_ms"] >= 0


def test_a_stripe_answering_5xx_is_degraded(client, settings, monkeypatch, request):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_x", WEBHOOK_SECRET
    monkeypatch.setattr(gateway, "MAX_NETWORK_RETRIES", 0)
    gateway._build_client.cache_clear()
    request.addfinalizer(gateway._build_client.cache_clear)
    peer = FailingPeer(mode="server_error")
    request.addfinalizer(peer.close)
    settings.STRIPE_API_BASE = peer.url
    section = _deep(client)
    assert section["status"] == "degraded" and section["details"]["api"]["status"] == "degraded", section
