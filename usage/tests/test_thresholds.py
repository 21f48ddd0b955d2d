"""Usage alerts fire once per period (also when crossed inside a batch, never for a rolled-back batch), and
hard caps refuse the batch that would pass them, atomically with the ledger, also under concurrent batches."""

from decimal import Decimal

import pytest
from django.db import transaction

from billing_project.tests.api_support import api_customer
from billing_project.tests.threads import race
from core.audit import Actor
from core.exceptions import SpendCapReached
from core.tests.jobs_support import jobs_queued, jobs_run_queued
from credits.models import CreditSource
from credits.selectors import credit_balance_get
from credits.services import credit_grant
from outbound_webhooks.models import WebhookEvent
from outbound_webhooks.tests.factories import WebhookEndpointFactory
from subscriptions.tests.factories import CustomerFactory, SubscriptionFactory
from usage.models import MeterPrice, ThresholdKind, UsageAlert, UsageEvent, UsageThreshold
from usage.services import UsageEventInput, usage_event_record, usage_events_record_batch
from usage.tests.factories import MeterFactory
from usage.thresholds import USAGE_ALERT_TASK

ACTOR = Actor.system("test")


def _batch(customer, meter, count: int, prefix: str = "e", quantity: Decimal = Decimal(1)):
    return usage_events_record_batch(customer=customer, events=[
        UsageEventInput(meter_code=meter.code, idempotency_key=f"{prefix}{i}", quantity=quantity)
        for i in range(count)])


@pytest.fixture
def metered(db):
    """A subscribed customer on a plan that includes 100 units of a meter priced 2 minor units each beyond."""
    subscription = SubscriptionFactory()
    meter = MeterFactory()
    MeterPrice.objects.create(plan=subscription.plan, meter=meter, unit_amount=Decimal(2), included_units=Decimal(100))
    WebhookEndpointFactory(event_types=["usage.threshold_reached"])
    return subscription, meter


@pytest.mark.django_db
def test_a_threshold_crossed_inside_a_batch_of_1000_fires_once_per_period_with_webhook_and_email(metered):
    subscription, meter = metered
    threshold = UsageThreshold.objects.create(plan=subscription.plan, meter=meter, kind=ThresholdKind.UNITS,
                                              value=Decimal(500), name="half the quota")
    _batch(subscription.customer, meter, 1000)  # crosses 500 at its 500th event
    _batch(subscription.customer, meter, 1000, prefix="f")  # still above: nothing more this period
    [alert] = UsageAlert.objects.all()
    assert (alert.threshold, alert.customer, alert.period_start, alert.observed) == (
        threshold, subscription.customer, subscription.current_period_start, Decimal(1000))
    [event] = WebhookEvent.objects.filter(event_type="usage.threshold_reached")
    assert (event.object_id, event.data["meter"], event.data["observed"]) == (subscription.customer.pk, meter.code,
                                                                              "1000.000000")
    assert jobs_run_queued(task_name=USAGE_ALERT_TASK) == 1


@pytest.mark.django_db
def test_percent_of_included_units_and_usage_charge_thresholds_are_reached_at_their_own_levels(metered):
    subscription, meter = metered
    plan = subscription.plan
    percent = UsageThreshold.objects.create(plan=plan, meter=meter, kind=ThresholdKind.INCLUDED_PERCENT,
                                            value=Decimal(80))  # 80 units
    charge = UsageThreshold.objects.create(plan=plan, meter=meter, kind=ThresholdKind.CHARGE,
                                           value=Decimal(100))  # 100 included + 100 / 2 = 150 units
    _batch(subscription.customer, meter, 79)
    assert not UsageAlert.objects.exists()
    _batch(subscription.customer, meter, 1, prefix="a")
    assert list(UsageAlert.objects.values_list("threshold", flat=True)) == [percent.pk]
    _batch(subscription.customer, meter, 70, prefix="b")
    assert sorted(UsageAlert.objects.values_list("threshold", flat=True)) == [percent.pk, charge.pk]


@pytest.mark.django_db
def test_a_rolled_back_batch_fires_nothing(metered):
    subscription, meter = metered
    UsageThreshold.objects.create(customer=subscription.customer, meter=meter, kind=ThresholdKind.UNITS, value=10)
    with pytest.raises(RuntimeError), transaction.atomic():
        _batch(subscription.customer, meter, 20)
        raise RuntimeError("the request failed after the batch")
    assert not UsageAlert.objects.exists() and not WebhookEvent.objects.exists()
    assert jobs_queued(task_name=USAGE_ALERT_TASK) == []


@pytest.mark.django_db
def test_a_credit_balance_threshold_fires_when_usage_debits_take_the_balance_below_it(metered):
    subscription, _ = metered
    credit_meter = MeterFactory(credits_per_unit=Decimal(1))
    credit_grant(customer=subscription.customer, amount=150, source=CreditSource.PROMOTION, actor=ACTOR)
    UsageThreshold.objects.create(plan=subscription.plan, kind=ThresholdKind.CREDIT_BALANCE, value=Decimal(100))
    _batch(subscription.customer, credit_meter, 40)  # 110 left
    assert not UsageAlert.objects.exists()
    _batch(subscription.customer, credit_meter, 20, prefix="x")  # 90 left: crossed
    assert UsageAlert.objects.get().observed == Decimal(90)


@pytest.mark.django_db
def test_a_hard_cap_refuses_the_batch_that_would_pass_it_and_nothing_of_it_is_stored_or_debited(metered):
    subscription, _ = metered
    meter = MeterFactory(credits_per_unit=Decimal(1))
    credit_grant(customer=subscription.customer, amount=10_000, source=CreditSource.PROMOTION, actor=ACTOR)
    UsageThreshold.objects.create(customer=subscription.customer, meter=meter, kind=ThresholdKind.UNITS,
                                  value=Decimal(1000), hard_cap=True, name="monthly cap")
    _batch(subscription.customer, meter, 1000)  # exactly the cap: accepted
    with pytest.raises(SpendCapReached) as refused:
        _batch(subscription.customer, meter, 1, prefix="over")
    assert refused.value.http_status == 402 and "monthly cap" in refused.value.message
    assert refused.value.extra["cap"]["limit"] == "1000.000000"
    assert UsageEvent.objects.count() == 1000 and credit_balance_get(customer=subscription.customer) == 9000


@pytest.mark.django_db
def test_single_events_are_held_to_the_same_caps_and_alerts(metered):
    subscription, meter = metered
    UsageThreshold.objects.create(customer=subscription.customer, meter=meter, kind=ThresholdKind.UNITS,
                                  value=Decimal(2), hard_cap=True)
    for key in ("one", "two"):
        usage_event_record(customer=subscription.customer, meter=meter, idempotency_key=key)
    assert UsageAlert.objects.get().observed == Decimal(2)
    with pytest.raises(SpendCapReached):
        usage_event_record(customer=subscription.customer, meter=meter, idempotency_key="three")
    assert UsageEvent.objects.count() == 2


@pytest.mark.django_db
def test_the_api_answers_402_naming_the_cap():
    account = api_customer()
    meter = MeterFactory()
    UsageThreshold.objects.create(plan=account.plan, meter=meter, kind=ThresholdKind.UNITS, value=Decimal(2),
                                  hard_cap=True, name="trial cap")
    events = [{"meter": meter.code, "idempotency_key": f"k{i}", "quantity": "1"} for i in range(3)]
    response = account.client.post("/api/v1/usage/events/", {"events": events}, format="json")
    assert response.status_code == 402, response.content
    error = response.json()["error"]
    assert error["code"] == "spend_cap_reached" and "trial cap" in error["message"]
    assert error["details"]["cap"]["name"] == "trial cap (hard cap)"
    assert not UsageEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_never_take_usage_over_a_hard_cap():
    subscription = SubscriptionFactory(customer=CustomerFactory())
    meter = MeterFactory()
    UsageThreshold.objects.create(plan=subscription.plan, meter=meter, kind=ThresholdKind.UNITS,
                                  value=Decimal(1000), hard_cap=True)

    def batch(number):
        return lambda: _batch(subscription.customer, meter, 300, prefix=f"b{number}-")

    outcome = race([batch(number) for number in range(6)], join_timeout=60)
    # 6 x 300 wanted under a cap of 1,000: three batches fit, the others are refused whole.
    assert len(outcome.results) == 3 and all(r.created == 300 for r in outcome.results)
    assert len(outcome.errors) == 3 and all(isinstance(e, SpendCapReached) for e in outcome.errors)
    assert UsageEvent.objects.filter(customer=subscription.customer).count() == 900
