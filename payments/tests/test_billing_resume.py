from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing_project.tests.admin_helpers import action_names, changelist_url, messages_of, post_action, staff_user
from billing_project.tests.api_support import api_customer
from core.audit import Actor
from core.exceptions import IllegalTransition
from credits.selectors import credit_balance_get
from payments.billing.preview import invoice_preview
from payments.billing.resume import subscription_resume_billed
from payments.billing.run import billing_run
from payments.models import PERIOD_BILLING_REASONS, BillingReason, Invoice
from payments.tests.conftest import T0, make_due_subscription
from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.services import subscription_cancel, subscription_pause, subscription_resume
from subscriptions.tests.factories import PlanFactory
from usage.services import usage_event_record

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


def _paused_90_days(*, plan=None):
    """An API customer's monthly subscription paused 10 days into a period that ended 90 days ago."""
    caller = api_customer(amount=3000, credits_per_period=0) if plan is None else api_customer(**plan)
    now = timezone.now()
    start = now - timedelta(days=120)
    sub = caller.subscription
    Subscription.objects.filter(pk=sub.pk).update(billing_cycle_anchor=start, current_period_start=start,
                                                  current_period_end=start + timedelta(days=30))
    subscription_pause(subscription=sub, actor=ACTOR, now=start + timedelta(days=10))
    return caller, sub


def _billing_run(as_of) -> str:
    out = StringIO()
    call_command("billing", "run", "--as-of", as_of.isoformat(), "--no-progress", stdout=out)
    return out.getvalue()


def _period_invoices(sub):
    return list(Invoice.objects.filter(subscription=sub, billing_reason__in=PERIOD_BILLING_REASONS).order_by("pk"))


def test_resuming_through_the_api_after_90_paused_days_bills_one_new_period_not_the_paused_months():
    caller, sub = _paused_90_days()

    response = caller.client.post(f"/api/v1/subscriptions/{sub.pk}/resume/", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    _billing_run(timezone.now() + timedelta(days=1))

    sub.refresh_from_db()
    invoices = _period_invoices(sub)
    assert len(invoices) == 1 and invoices[0].total == 3000
    assert (invoices[0].period_start, invoices[0].period_end) == (sub.current_period_start, sub.current_period_end)
    assert sub.current_period_start > timezone.now() - timedelta(minutes=5)  # the cycle restarted on resume
    assert body["status"] == "active" and body["current_period_end"] is not None
    # The run at the restarted period's end bills the next period, once.
    _billing_run(sub.current_period_end)
    assert len(_period_invoices(sub)) == 2


def test_resuming_through_the_admin_action_after_90_paused_days_bills_one_new_period(client):
    _, sub = _paused_90_days()
    client.force_login(staff_user("subscriptions.resume_subscription", "subscriptions.view_subscription"))

    response = post_action(client, Subscription, "resume", [sub])
    assert "Resumed 1 subscription(s)." in messages_of(response)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    _billing_run(timezone.now() + timedelta(days=1))

    assert len(_period_invoices(sub)) == 1
    assert sub.events.filter(kind="renewed", reason="cycle restarted on resume").count() == 1


def test_the_admin_resume_action_needs_its_permission(client):
    _, sub = _paused_90_days()
    client.force_login(staff_user("subscriptions.view_subscription", "subscriptions.change_subscription"))

    assert "resume" not in action_names(client.get(changelist_url(Subscription)))
    post_action(client, Subscription, "resume", [sub])
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAUSED


def test_preview_after_resume_agrees_with_the_run(metered_plan):
    plan, meter = metered_plan
    sub = make_due_subscription(plan=plan)
    subscription_pause(subscription=sub, actor=ACTOR, now=T0 + timedelta(days=2))
    resumed_at = FEB_28 + timedelta(days=90)
    subscription_resume_billed(subscription=sub, actor=ACTOR, now=resumed_at)
    sub.refresh_from_db()
    usage_event_record(customer=sub.customer, meter=meter, idempotency_key="u1", quantity=Decimal(300),
                       occurred_at=resumed_at + timedelta(days=3))

    preview = invoice_preview(customer=sub.customer)
    billing_run(as_of=preview.issue_at)

    issued = _period_invoices(sub)[-1]
    assert preview.issue_at == issued.period_start == sub.current_period_end
    assert [(line.spec.description, line.amount) for line in preview.lines] == [
        (line.description, line.amount) for line in issued.lines.order_by("id")]
    assert preview.total == issued.total == 2000 + 100  # the fee, and 200 units beyond 100 included at 0.5


def test_resuming_a_subscription_set_to_cancel_whose_period_ended_while_paused_ends_it():
    sub = make_due_subscription(plan=PlanFactory(amount=3000))
    subscription_cancel(subscription=sub, actor=ACTOR, at_period_end=True, now=T0 + timedelta(days=1))
    subscription_pause(subscription=sub, actor=ACTOR, now=T0 + timedelta(days=2))

    assert subscription_resume_billed(subscription=sub, actor=ACTOR, now=FEB_28 + timedelta(days=5)) is None
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELED
    assert not Invoice.objects.exists()  # no usage to bill in arrears, and no new period


def test_the_subscriptions_resume_refuses_a_resume_that_must_restart_the_cycle():
    sub = make_due_subscription()
    subscription_pause(subscription=sub, actor=ACTOR, now=T0 + timedelta(days=2))

    with pytest.raises(IllegalTransition) as refused:
        subscription_resume(subscription=sub, actor=ACTOR, now=FEB_28 + timedelta(days=1))
    assert refused.value.code == "resume_restarts_cycle"
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAUSED
