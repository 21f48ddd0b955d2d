"""Credit-balance thresholds are checked by every credit debit (the API's `POST /api/v1/credits/debit/`,
the service, usage), inside the debit's transaction, once per period, and at no cost to a debit that
crosses none (usage.thresholds.credit_balance_thresholds_check, credits.thresholds)."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing_project.tests.api_support import api_customer
from core.audit import Actor
from core.tests.jobs_support import jobs_queued
from credits.models import CreditSource
from credits.services import credit_debit, credit_grant
from outbound_webhooks.models import WebhookEvent
from outbound_webhooks.tests.factories import WebhookEndpointFactory
from subscriptions.tests.factories import CustomerFactory, SubscriptionFactory
from usage.models import ThresholdKind, UsageAlert, UsageThreshold
from usage.thresholds import USAGE_ALERT_TASK

ACTOR = Actor.system("test")
pytestmark = pytest.mark.django_db


def _granted(customer, amount: int = 150):
    credit_grant(customer=customer, amount=amount, source=CreditSource.PROMOTION, actor=ACTOR)
    return customer


def test_an_api_debit_crossing_a_plan_threshold_alerts_once_per_period_with_webhook_and_email():
    caller = api_customer()
    WebhookEndpointFactory(event_types=["usage.threshold_reached"])
    threshold = UsageThreshold.objects.create(plan=caller.plan, kind=ThresholdKind.CREDIT_BALANCE, value=100,
                                              name="running low")
    _granted(caller.customer)

    assert caller.client.post("/api/v1/credits/debit/", {"amount": 40}, format="json").status_code == 201
    assert not UsageAlert.objects.exists()  # 110 left
    assert caller.client.post("/api/v1/credits/debit/", {"amount": 20}, format="json").status_code == 201
    assert caller.client.post("/api/v1/credits/debit/", {"amount": 80}, format="json").status_code == 201

    [alert] = UsageAlert.objects.all()
    assert (alert.threshold, alert.customer, alert.observed) == (threshold, caller.customer, Decimal(90))
    assert alert.period_start == caller.subscription.current_period_start
    [event] = WebhookEvent.objects.filter(event_type="usage.threshold_reached")
    assert (event.data["kind"], event.data["name"], event.data["meter"]) == ("credit_balance", "running low", None)
    assert [j.args for j in jobs_queued(task_name=USAGE_ALERT_TASK)] == [{"alert_id": alert.pk}]


def test_a_customer_threshold_fires_from_the_debit_service_and_another_plans_does_not():
    customer = _granted(SubscriptionFactory().customer)
    own = UsageThreshold.objects.create(customer=customer, kind=ThresholdKind.CREDIT_BALANCE, value=50)
    UsageThreshold.objects.create(plan=SubscriptionFactory().plan, kind=ThresholdKind.CREDIT_BALANCE, value=120)
    UsageThreshold.objects.create(customer=CustomerFactory(), kind=ThresholdKind.CREDIT_BALANCE, value=120)

    credit_debit(customer=customer, amount=110, actor=ACTOR)  # 150 -> 40: passes 120 and 50
    assert list(UsageAlert.objects.values_list("threshold", "customer")) == [(own.pk, customer.pk)]


def test_a_customer_without_a_live_subscription_counts_in_calendar_months():
    customer = _granted(CustomerFactory())
    UsageThreshold.objects.create(customer=customer, kind=ThresholdKind.CREDIT_BALANCE, value=100)
    credit_debit(customer=customer, amount=60, actor=ACTOR)
    alert = UsageAlert.objects.get()
    assert (alert.period_start.day, alert.period_start.hour) == (1, 0)


def test_a_rolled_back_debit_alerts_nothing():
    customer = _granted(CustomerFactory())
    UsageThreshold.objects.create(customer=customer, kind=ThresholdKind.CREDIT_BALANCE, value=100)
    WebhookEndpointFactory(event_types=["usage.threshold_reached"])
    with pytest.raises(RuntimeError), transaction.atomic():
        credit_debit(customer=customer, amount=100, actor=ACTOR)
        raise RuntimeError("the request failed after the debit")
    assert not UsageAlert.objects.exists() and not WebhookEvent.objects.exists()
    assert jobs_queued(task_name=USAGE_ALERT_TASK) == []


@pytest.mark.django_db(transaction=True)
def test_a_debit_crossing_no_threshold_stays_one_statement_while_thresholds_exist():
    customer = _granted(CustomerFactory(), 1000)
    UsageThreshold.objects.create(customer=customer, kind=ThresholdKind.CREDIT_BALANCE, value=100)
    UsageThreshold.objects.create(plan=SubscriptionFactory().plan, kind=ThresholdKind.CREDIT_BALANCE, value=500)
    credit_debit(customer=customer, amount=1, actor=ACTOR)  # the committed change is read once, then kept

    with CaptureQueriesContext(connection) as context:
        credit_debit(customer=customer, amount=30, actor=ACTOR)  # 999 -> 969: no level in between
    statements = [q["sql"] for q in context.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(statements) == 1 and "credits_debit(" in statements[0], statements  # held back by no level


@pytest.mark.django_db(transaction=True)
def test_a_threshold_added_or_changed_later_is_seen_by_the_next_debit():
    customer = _granted(CustomerFactory(), 1000)
    credit_debit(customer=customer, amount=10, actor=ACTOR)  # the process now knows there is no threshold
    threshold = UsageThreshold.objects.create(customer=customer, kind=ThresholdKind.CREDIT_BALANCE, value=900)
    credit_debit(customer=customer, amount=100, actor=ACTOR)  # 990 -> 890
    assert UsageAlert.objects.get().threshold_id == threshold.pk

    UsageThreshold.objects.filter(pk=threshold.pk).update(value=800)  # a bulk write tells the memo too
    UsageAlert.objects.all().delete()
    credit_debit(customer=customer, amount=100, actor=ACTOR)  # 890 -> 790
    assert UsageAlert.objects.get().observed == Decimal(790)


@pytest.mark.django_db(transaction=True)
def test_a_debit_on_its_own_crossing_a_threshold_is_held_back_and_redone_with_its_alert_in_one_transaction():
    """In autocommit the one-statement debit is its own transaction: one crossing a watched level writes
    nothing, and is redone inside a transaction that also writes the alert (so neither commits alone)."""
    customer = _granted(CustomerFactory(), 1000)
    UsageThreshold.objects.create(customer=customer, kind=ThresholdKind.CREDIT_BALANCE, value=Decimal("899.5"))
    credit_debit(customer=customer, amount=1, actor=ACTOR)  # 999: the memo is loaded

    with CaptureQueriesContext(connection) as context:
        write = credit_debit(customer=customer, amount=100, actor=ACTOR)  # 999 -> 899 passes 899.5
    statements = [q["sql"] for q in context.captured_queries]
    debits = [i for i, s in enumerate(statements) if "credits_debit(" in s]
    alert = next(i for i, s in enumerate(statements) if "INSERT INTO usage_usagealert" in s)
    assert len(debits) == 2 and statements.index("BEGIN") < debits[1] < alert < statements.index("COMMIT")
    assert write.balance == 899 and UsageAlert.objects.get().observed == Decimal(899)


def test_a_threshold_deleted_behind_the_memo_never_breaks_a_debit():
    customer = _granted(CustomerFactory())
    threshold = UsageThreshold.objects.create(customer=customer, kind=ThresholdKind.CREDIT_BALANCE, value=100)
    with connection.cursor() as cursor:  # a raw fix no model hook sees
        cursor.execute("DELETE FROM usage_usagethreshold WHERE id = %s", [threshold.pk])
    assert credit_debit(customer=customer, amount=60, actor=ACTOR).balance == 90
    assert not UsageAlert.objects.exists()
