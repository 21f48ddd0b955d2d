"""Subscriptions emit created / updated / canceled from the audit row every change writes."""

import pytest

from core.audit import Actor
from outbound_webhooks.models import EventType, WebhookEvent
from outbound_webhooks.tests.factories import WebhookEndpointFactory
from subscriptions.models import SubscriptionStatus
from subscriptions.services import StatusMove, subscription_cancel, subscription_create, subscription_transition_many
from subscriptions.tests.factories import CustomerFactory, PlanFactory

ACTOR = Actor.system("test")
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def endpoint():
    return WebhookEndpointFactory(event_types=EventType.values)


def _events() -> list[tuple[str, int, str]]:
    return list(WebhookEvent.objects.filter(object_type="subscription").order_by("pk")
                .values_list("event_type", "sequence", "data__change"))


def test_a_subscription_created_then_canceled_at_period_end_then_now_emits_each_change_in_order():
    customer = CustomerFactory(user=None)
    subscription = subscription_create(customer=customer, plan=PlanFactory(amount=0, trial_days=0), actor=ACTOR)
    subscription_cancel(subscription=subscription, actor=ACTOR, at_period_end=True)
    subscription_cancel(subscription=subscription, actor=ACTOR)
    assert _events() == [("subscription.created", 1, "created"), ("subscription.updated", 2, "cancel_scheduled"),
                         ("subscription.canceled", 3, "status_changed")]
    created = WebhookEvent.objects.get(event_type="subscription.created").data
    assert (created["id"], created["customer"], created["status"]) == (subscription.pk, customer.pk, "active")


def test_bulk_status_moves_emit_one_event_per_subscription_with_its_new_state():
    customer = CustomerFactory(user=None)
    subscription = subscription_create(customer=customer, plan=PlanFactory(amount=0, trial_days=0), actor=ACTOR)
    subscription_transition_many(moves=[StatusMove(subscription.pk, SubscriptionStatus.CANCELED)], actor=ACTOR)
    canceled = WebhookEvent.objects.get(event_type="subscription.canceled")
    assert (canceled.sequence, canceled.data["status"]) == (2, "canceled")
