"""Reads of the outbound webhooks."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from outbound_webhooks.models import WebhookDelivery, WebhookEndpoint


def webhook_endpoints_by_event_type() -> dict[str, list[int]]:
    """Enabled endpoints' ids per event type they subscribe to (one query, read by every emit)."""
    subscribers: dict[str, list[int]] = defaultdict(list)
    for pk, event_types in WebhookEndpoint.objects.filter(enabled=True).order_by("pk").values_list("pk", "event_types"):
        for event_type in event_types:
            subscribers[event_type].append(pk)
    return subscribers


def webhook_event_types_wanted() -> set[str]:
    """Event types some enabled endpoint subscribes to: bulk emitters skip building payloads nobody wants."""
    return set(webhook_endpoints_by_event_type())


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.all()


def webhook_delivery_list() -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.select_related("event", "endpoint").prefetch_related("attempt_log")


@dataclass(frozen=True)
class TroubledEndpoints:
    # URLs of enabled endpoints failing since before the cut-off, and of endpoints the system disabled.
    failing: list[str]
    disabled: list[str]


def webhook_endpoints_troubled(*, failing_before: datetime) -> TroubledEndpoints:
    """What the module's health reports (one query)."""
    rows = (WebhookEndpoint.objects.filter(enabled=True, failing_since__lt=failing_before)
            | WebhookEndpoint.objects.filter(enabled=False, disabled_at__isnull=False)).order_by("pk")
    failing, disabled = [], []
    for url, enabled in rows.values_list("url", "enabled"):
        (failing if enabled else disabled).append(url)
    return TroubledEndpoints(failing=failing, disabled=disabled)
