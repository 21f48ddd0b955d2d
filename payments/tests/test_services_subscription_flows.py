"""payments.services.subscription_flows: starting a subscription and changing its plan."""

from datetime import timedelta

import pytest

from core.exceptions import IllegalTransition, InvalidOperation
from credits.selectors import credit_balance_get
from payments.models import BillingReason, Invoice, InvoiceLineKind, PaymentMethod
from payments.providers.manual.services import payment_record_manual
from payments.services import invoice_mark_paid, subscription_change_plan, subscription_start
from payments.tests.services_support import ACTOR, IS, NOW, S, open_invoice
from subscriptions.models import SubscriptionEvent, SubscriptionEventKind
from subscriptions.tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_start_a_free_plan():
    plan = PlanFactory(amount=0, trial_days=0, credits_per_period=10)

    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=ACTOR, now=NOW)

    assert (subscription.status, invoice) == (S.ACTIVE, None)
    assert credit_balance_get(customer=subscription.customer) == 10


def test_start_a_trial_grants_the_plan_credits_and_bills_nothing():
    plan = PlanFactory(amount=999, trial_days=14, credits_per_period=100)

    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=ACTOR, now=NOW)

    assert (subscription.status, invoice) == (S.TRIALING, None)
    assert credit_balance_get(customer=subscription.customer) == 100
    assert not Invoice.objects.exists()


def test_start_a_paid_plan_issues_the_first_invoice():
    plan = PlanFactory(name="Pro", amount=2999, trial_days=14)

    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=ACTOR, now=NOW,
                                               with_trial=False)

    assert subscription.status == S.INCOMPLETE
    assert (invoice.status, invoice.total, invoice.billing_reason, invoice.number) == (
        IS.OPEN, 2999, BillingReason.SUBSCRIPTION_CREATE, "INV-2025-000001")
    assert (invoice.period_start, invoice.period_end) == (subscription.current_period_start,
                                                          subscription.current_period_end)
    [subscription_line] = invoice.lines.all()
    assert (subscription_line.kind, subscription_line.amount) == (InvoiceLineKind.SUBSCRIPTION, 2999)
    assert credit_balance_get(customer=subscription.customer) == 0


def active_on(plan, *, start=NOW):
    """An active monthly subscription whose period is [Apr 1, May 1) 2025: 30 days."""
    customer = CustomerFactory()
    subscription, invoice = subscription_start(customer=customer, plan=plan, actor=ACTOR, now=start,
                                               with_trial=False)
    if invoice is not None:
        invoice_mark_paid(invoice=invoice, actor=ACTOR, now=start)
    subscription.refresh_from_db()
    return subscription


@pytest.mark.parametrize(("days_used", "credit", "charge"), [
    (15, -500, 1500),    # half the period left: -499.5 and 1499.5, each rounded half-up away from zero
    (10, -666, 1999),    # two thirds left: -666 exactly and 1999.33
    (0, -999, 2999),     # upgrade at the very start
])
def test_upgrade_is_prorated_to_the_second(days_used, credit, charge):
    basic, pro = PlanFactory(name="Basic", amount=999), PlanFactory(name="Pro", amount=2999)
    subscription = active_on(basic)

    change = subscription_change_plan(subscription=subscription, new_plan=pro, actor=ACTOR,
                                      now=NOW + timedelta(days=days_used), reason="more capacity")

    assert change.effective == "immediate"
    invoice = change.invoice
    assert list(invoice.lines.order_by("id").values_list("kind", "amount")) == [
        (InvoiceLineKind.PRORATION, credit), (InvoiceLineKind.PRORATION, charge)]
    assert change.proration_amount == invoice.total == credit + charge
    assert (invoice.billing_reason, invoice.status) == (BillingReason.SUBSCRIPTION_UPDATE, IS.OPEN)
    subscription.refresh_from_db()
    assert subscription.plan == pro
    event = SubscriptionEvent.objects.filter(subscription=subscription, kind=SubscriptionEventKind.PLAN_CHANGED).get()
    assert (event.from_plan, event.to_plan, event.data) == (basic, pro, {"invoice_id": invoice.pk})


def test_downgrade_waits_for_the_period_end():
    basic, pro = PlanFactory(amount=999), PlanFactory(amount=2999)
    subscription = active_on(pro)

    change = subscription_change_plan(subscription=subscription, new_plan=basic, actor=ACTOR,
                                      now=NOW + timedelta(days=3))

    assert (change.effective, change.invoice, change.proration_amount) == ("period_end", None, 0)
    assert change.effective_at == subscription.current_period_end
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.scheduled_plan) == (pro, basic)
    assert SubscriptionEvent.objects.filter(subscription=subscription,
                                            kind=SubscriptionEventKind.PLAN_CHANGE_SCHEDULED).count() == 1
    assert Invoice.objects.filter(billing_reason=BillingReason.SUBSCRIPTION_UPDATE).count() == 0


def test_plan_change_during_a_trial_is_immediate_and_free():
    basic, pro = PlanFactory(amount=999, trial_days=14), PlanFactory(amount=2999, trial_days=14)
    subscription, _ = subscription_start(customer=CustomerFactory(), plan=pro, actor=ACTOR, now=NOW)
    assert subscription.status == S.TRIALING

    change = subscription_change_plan(subscription=subscription, new_plan=basic, actor=ACTOR, now=NOW)

    assert (change.effective, change.invoice) == ("immediate", None)
    subscription.refresh_from_db()
    assert subscription.plan == basic


@pytest.mark.parametrize(("target", "error", "code"), [
    ("same", IllegalTransition, "same_plan"),
    ("inactive", InvalidOperation, "plan_inactive"),
    ("currency", InvalidOperation, "currency_mismatch"),
    ("yearly", InvalidOperation, "interval_mismatch"),
    ("canceled", IllegalTransition, "subscription_canceled"),
])
def test_plan_change_refusals_change_nothing(target, error, code):
    basic = PlanFactory(amount=999)
    subscription = active_on(basic)
    new_plan = {
        "same": basic, "inactive": PlanFactory(amount=2999, is_active=False),
        "currency": PlanFactory(amount=2999, currency="EUR"), "yearly": PlanFactory(amount=9990, interval="year"),
        "canceled": PlanFactory(amount=2999),
    }[target]
    if target == "canceled":
        subscription.status = S.CANCELED
        subscription.save()

    with pytest.raises(error) as refused:
        subscription_change_plan(subscription=subscription, new_plan=new_plan, actor=ACTOR, now=NOW)

    assert refused.value.code == code
    subscription.refresh_from_db()
    assert subscription.plan == basic
    assert not Invoice.objects.filter(billing_reason=BillingReason.SUBSCRIPTION_UPDATE).exists()


def test_paying_a_proration_does_not_clear_an_unpaid_renewal():
    basic, pro = PlanFactory(amount=999), PlanFactory(amount=2999)
    subscription = SubscriptionFactory(plan=basic, status=S.PAST_DUE, billing_cycle_anchor=NOW)
    renewal = open_invoice(customer=subscription.customer, amount=999, subscription=subscription,
                           billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start=NOW,
                           period_end=NOW + timedelta(days=30))

    change = subscription_change_plan(subscription=subscription, new_plan=pro, actor=ACTOR,
                                      now=NOW + timedelta(days=15))
    payment_record_manual(customer=subscription.customer, amount=change.invoice.amount_due,
                          method=PaymentMethod.CASH, actor=ACTOR, invoice=change.invoice)

    subscription.refresh_from_db()
    assert subscription.status == S.PAST_DUE
    payment_record_manual(customer=subscription.customer, amount=999, method=PaymentMethod.CASH, actor=ACTOR,
                          invoice=renewal)
    subscription.refresh_from_db()
    assert subscription.status == S.ACTIVE
