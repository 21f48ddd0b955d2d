"""Outbound webhook events about usage: `usage.threshold_reached`, written with the alert (same transaction)."""

from datetime import datetime

from outbound_webhooks.models import EventType
from outbound_webhooks.services import WebhookEventInput, webhook_events_emit_many
from usage.models import UsageAlert


def usage_alerts_webhook_emit(*, alerts: list[UsageAlert], period_end: datetime) -> None:
    # About the customer (object "customer_usage"), so one customer's alerts are numbered in order.
    webhook_events_emit_many(events=[WebhookEventInput(
        EventType.USAGE_THRESHOLD_REACHED, "customer_usage", alert.customer_id, {
            "alert": alert.pk, "customer": alert.customer_id, "threshold": alert.threshold_id,
            "name": str(alert.threshold), "kind": alert.threshold.kind, "value": alert.threshold.value,
            "hard_cap": alert.threshold.hard_cap,
            "meter": alert.threshold.meter.code if alert.threshold.meter_id else None,
            "observed": alert.observed, "period_start": alert.period_start, "period_end": period_end,
        }) for alert in alerts])
