"""Outbound webhook events about subscriptions, written with the subscription's audit row (same transaction).

The audit row is the one place every subscription change passes through, so `subscription.created`,
`subscription.canceled` and `subscription.updated` (any other change: status, plan, renewal, a cancel
scheduled or withdrawn) are emitted from there; `data.change` names the audit kind.
"""

from outbound_webhooks.models import EventType
from outbound_webhooks.selectors import webhook_event_types_wanted
from outbound_webhooks.services import WebhookEventInput, webhook_events_emit_many
from subscriptions.models import Subscription, SubscriptionEventKind, SubscriptionStatus

_FIELDS = ("id", "customer_id", "plan_id", "status", "current_period_start", "current_period_end",
           "cancel_at_period_end", "trial_end", "canceled_at", "ended_at")


def _event_type(*, kind: str, to_status: str) -> str:
    if kind == SubscriptionEventKind.CREATED:
        return EventType.SUBSCRIPTION_CREATED
    if kind == SubscriptionEventKind.STATUS_CHANGED and to_status == SubscriptionStatus.CANCELED:
        return EventType.SUBSCRIPTION_CANCELED
    return EventType.SUBSCRIPTION_UPDATED


def _data(values: dict, kind: str) -> dict:
    return {**{name.removesuffix("_id"): values[name] for name in _FIELDS}, "change": kind}


def subscription_webhook_emit(*, subscription: Subscription, kind: str, to_status: str) -> None:
    """One audited change of one subscription (in memory as saved)."""
    values = {name: getattr(subscription, name) for name in _FIELDS}
    webhook_events_emit_many(events=[WebhookEventInput(_event_type(kind=kind, to_status=to_status), "subscription",
                                                       subscription.pk, _data(values, kind))])


def subscriptions_webhook_emit_many(*, changes: list[tuple[int, str, str]]) -> None:
    """(subscription id, audit kind, status moved to) for a batch written in bulk: the rows are read once,
    and only when some endpoint wants one of the events."""
    wanted = webhook_event_types_wanted()
    typed = [(pk, kind, _event_type(kind=kind, to_status=to_status)) for pk, kind, to_status in changes]
    typed = [change for change in typed if change[2] in wanted]
    if not typed:
        return
    rows = {row["id"]: row for row in Subscription.objects.filter(pk__in=[pk for pk, _, _ in typed]).values(*_FIELDS)}
    webhook_events_emit_many(events=[WebhookEventInput(event_type, "subscription", pk, _data(rows[pk], kind))
                                     for pk, kind, event_type in typed])
