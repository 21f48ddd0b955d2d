from datetime import UTC, datetime, timedelta

import pytest

from billing_project.audit import Actor
from credits.selectors import credit_balance_get
from payments.billing.resume import subscription_resume_billed
from payments.billing.run import billing_run
from payments.models import BillingReason, Invoice
from payments.tests.conftest import T0, make_due_subscription
from subscriptions.models import SubscriptionStatus
from subscriptions.services import subscription_pause
from subscriptions.tests.factories import PlanFactory

ACTOR = Actor.system("test")
FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def test_paused_subscription_is_not_billed_and_resuming_within_the_period_changes_nothing():
    sub = make_due_subscription()
    subscription_pause(subscription=sub, actor=ACTOR, now=T0 + timedelta(days=2))
    billing_run(as_of=T0 + timedelta(days=10))
    assert subscription_resume_billed(subscription=sub, actor=ACTOR, now=T0 + timedelta(days=10)) is None
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE and sub.current_period_end == FEB_28
    assert not Invoice.objects.exists()


def test_resuming_after_the_period_ended_restarts_the_cycle_and_invoices_at_once():
    plan = PlanFactory(amount=3000, credits_per_period=25)
    sub = make_due_subscription(plan=plan)
    subscription_pause(subscription=sub, actor=ACTOR, now=T0 + timedelta(days=2))
    billing_run(as_of=FEB_28 + timedelta(days=30))  # paused through the period end: nothing happens
    assert not Invoice.objects.exists()
    resumed_at = FEB_28 + timedelta(days=40, hours=3)
    invoice = subscription_resume_billed(subscription=sub, actor=ACTOR, now=resumed_at)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert (sub.billing_cycle_anchor, sub.current_period_start) == (resumed_at, resumed_at)
    assert sub.current_period_end == datetime(2026, 5, 9, 15, 0, tzinfo=UTC)
    assert invoice.billing_reason == BillingReason.SUBSCRIPTION_CYCLE and invoice.total == 3000
    assert (invoice.period_start, invoice.period_end) == (resumed_at, sub.current_period_end)
    assert credit_balance_get(customer=sub.customer) == 25
    billing_run(as_of=resumed_at + timedelta(days=1))
    assert Invoice.objects.count() == 1  # the restarted period is not billed again by the run
