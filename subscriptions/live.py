"""The `subscriptions` live topic: a subscription's committed state, announced by every service that
writes its audit event (`subscription_event_write`)."""

from functools import partial

from django.db import transaction

from modules.topics import Topic, TopicQuery, topic_filters_apply, topic_publish
from subscriptions.models import Subscription, SubscriptionStatus

SUBSCRIPTIONS = "subscriptions"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def subscription_live_data(subscription: Subscription) -> dict:
    """The one shape of a subscription on the WebSocket, in snapshots and events alike."""
    return {
        "id": subscription.pk, "customer_id": subscription.customer_id, "plan_id": subscription.plan_id,
        "plan_code": subscription.plan.code, "status": subscription.status,
        "status_label": subscription.get_status_display(),
        "current_period_start": _iso(subscription.current_period_start),
        "current_period_end": _iso(subscription.current_period_end),
        "trial_end": _iso(subscription.trial_end), "cancel_at_period_end": subscription.cancel_at_period_end,
        "scheduled_plan_id": subscription.scheduled_plan_id, "canceled_at": _iso(subscription.canceled_at),
        "paused_at": _iso(subscription.paused_at), "created_at": _iso(subscription.created_at),
        "updated_at": _iso(subscription.updated_at),
    }


def _read(subscription_id: int) -> tuple[dict, dict] | None:
    subscription = Subscription.objects.select_related("plan").filter(pk=subscription_id).first()
    if subscription is None:
        return None
    return subscription_live_data(subscription), {"customer": subscription.customer_id,
                                                  "status": subscription.status, "plan": subscription.plan_id}


def subscription_changed(*, subscription_id: int, kind: str) -> None:
    """Announce the subscription's committed state to its customer and staff once the transaction commits."""
    transaction.on_commit(partial(topic_publish, topic=SUBSCRIPTIONS, kind=kind, read=partial(_read, subscription_id)))


def subscriptions_snapshot(query: TopicQuery) -> tuple[list[dict], int]:
    subscriptions = topic_filters_apply(Subscription.objects.select_related("plan"), query=query, fields={
        "customer": "customer_id", "status": "status", "plan": "plan_id"}).order_by("-id")
    return [subscription_live_data(s) for s in subscriptions[:query.limit]], subscriptions.count()


TOPICS = [
    Topic(name=SUBSCRIPTIONS, module="subscriptions", view_permission="subscriptions.view_subscription",
          filters={"status": tuple(SubscriptionStatus.values), "plan": int}, snapshot=subscriptions_snapshot),
]
