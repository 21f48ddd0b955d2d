"""Credits emit credits.granted for every grant (single and bulk) and credits.low when a debit crosses the threshold."""

import pytest
from django.utils import timezone

from core.audit import Actor
from credits.services import GrantSpec, credit_debit, credit_grant, credit_grants_bulk
from outbound_webhooks.models import EventType, WebhookEvent
from outbound_webhooks.tests.factories import WebhookEndpointFactory
from subscriptions.tests.factories import CustomerFactory

ACTOR = Actor.system("test")
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def endpoint():
    return WebhookEndpointFactory(event_types=EventType.values)


def test_a_grant_then_a_debit_below_the_threshold_emit_granted_then_low(settings):
    settings.CREDITS_LOW_THRESHOLD = 100
    customer = CustomerFactory(user=None)
    credit_grant(customer=customer, amount=150, source="purchase", actor=ACTOR)
    credit_debit(customer=customer, amount=40, actor=ACTOR)  # 110 left: above the threshold
    credit_debit(customer=customer, amount=20, actor=ACTOR)  # 90 left: crossed
    credit_debit(customer=customer, amount=20, actor=ACTOR)  # already below: nothing more
    events = list(WebhookEvent.objects.order_by("pk").values_list("event_type", "object_id", "sequence"))
    assert events == [("credits.granted", customer.pk, 1), ("credits.low", customer.pk, 2)]
    low = WebhookEvent.objects.get(event_type="credits.low").data
    assert (low["balance_after"], low["threshold"], low["amount"]) == (90, 100, -20)


def test_bulk_grants_emit_one_credits_granted_each():
    customers = [CustomerFactory(user=None) for _ in range(2)]
    now = timezone.now()
    credit_grants_bulk(specs=[GrantSpec(c.pk, 10, now, None, f"refill-{c.pk}", "plan refill") for c in customers],
                       source="plan_refill", actor=ACTOR)
    granted = WebhookEvent.objects.filter(event_type="credits.granted").order_by("object_id")
    assert [(e.object_id, e.data["amount"], e.data["balance_after"]) for e in granted] == [
        (customers[0].pk, 10, 10), (customers[1].pk, 10, 10)]
