"""Reads of the outbound webhooks."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from modules.selectors import module_enabled
from outbound_webhooks.models import ENDPOINT_SUBSCRIPTIONS_MEMO, MODULE_CODE, WebhookDelivery, WebhookEndpoint


def webhook_endpoints_by_event_type() -> dict[str, tuple[int, ...]]:
    """Enabled endpoints' ids per event type they subscribe to, read by every emit: from this process's
    memo (core.memo), reloaded with one query only after an endpoint changed. Do not mutate the answer.
    Nothing while the module is switched off: no event is recorded then (docs/webhooks-outbound.md)."""
    if not module_enabled(code=MODULE_CODE):
        return {}
    return ENDPOINT_SUBSCRIPTIONS_MEMO.get()


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
