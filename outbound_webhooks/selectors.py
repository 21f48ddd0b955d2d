"""Reads of the outbound webhooks."""

from collections import defaultdict

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
