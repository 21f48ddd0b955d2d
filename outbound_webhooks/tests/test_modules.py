"""The module's health: degraded while an endpoint keeps failing or stays disabled by the system."""

from datetime import timedelta

import pytest
from django.utils import timezone

from outbound_webhooks.modules import outbound_webhooks_health
from outbound_webhooks.tests.factories import WebhookEndpointFactory


@pytest.mark.django_db
def test_healthy_while_endpoints_deliver_or_have_failed_only_briefly():
    WebhookEndpointFactory()
    WebhookEndpointFactory(failing_since=timezone.now() - timedelta(minutes=5))
    assert outbound_webhooks_health(deep=False).status == "ok"


@pytest.mark.django_db
def test_degraded_by_an_endpoint_failing_past_the_configured_minutes_or_disabled_by_the_system():
    WebhookEndpointFactory(url="http://127.0.0.1:9/a", failing_since=timezone.now() - timedelta(hours=2))
    WebhookEndpointFactory(url="http://127.0.0.1:9/b", enabled=False, disabled_at=timezone.now())
    WebhookEndpointFactory(url="http://127.0.0.1:9/c", enabled=False)  # switched off by staff: not trouble
    report = outbound_webhooks_health(deep=False)
    assert report.status == "degraded"
    assert report.details == {"failing": ["http://127.0.0.1:9/a"], "disabled_by_system": ["http://127.0.0.1:9/b"]}
