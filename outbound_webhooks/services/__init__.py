"""Writes of the outbound webhooks (re-exported so callers import from `outbound_webhooks.services`).

`events` (emit, in the caller's transaction) <- `deliveries` (attempt, record, redeliver, disable);
`endpoints` (staff's registrations) stands alone.
"""

from outbound_webhooks.services.deliveries import (
    WEBHOOK_DELIVER_TASK,
    WEBHOOK_ENDPOINT_DISABLED_EMAIL_TASK,
    webhook_deliveries_resume,
    webhook_delivery_attempt,
    webhook_delivery_redeliver,
    webhook_endpoint_disabled_email,
)
from outbound_webhooks.services.endpoints import webhook_endpoint_create, webhook_endpoint_update
from outbound_webhooks.services.events import WebhookEventInput, webhook_event_emit, webhook_events_emit_many

__all__ = [
    "WEBHOOK_DELIVER_TASK",
    "WEBHOOK_ENDPOINT_DISABLED_EMAIL_TASK",
    "WebhookEventInput",
    "webhook_deliveries_resume",
    "webhook_delivery_attempt",
    "webhook_delivery_redeliver",
    "webhook_endpoint_create",
    "webhook_endpoint_disabled_email",
    "webhook_endpoint_update",
    "webhook_event_emit",
    "webhook_events_emit_many",
]
