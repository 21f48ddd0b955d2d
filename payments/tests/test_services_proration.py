"""Plan changes and proration: property-based (hypothesis) checks that invoices always add up."""

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.audit import Actor
from core.exceptions import IllegalTransition
from payments.billing.run import billing_run
from payments.billing.verify import billing_verify
from payments.models import BillingReason, Invoice, InvoiceLine
from payments.services import subscription_change_plan
from payments.tests.conftest import T0, make_due_subscription
from payments.tests.factories import StripeCustomerFactory
from subscriptions.models import SubscriptionStatus
from subscriptions.tests.factories import PlanFactory

ACTOR = Actor.system("test")
PROPERTY_SETTINGS = settings(max_examples=20, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

pytestmark = pytest.mark.django_db


def _assert_adds_up(invoice: Invoice) -> None:
    lines = list(invoice.lines.all())
    assert invoice.subtotal == sum(line.amount for line in lines)
    assert invoice.total == max(invoice.subtotal, 0)
    assert invoice.amount_due == (0 if invoice.status == "paid" else max(invoice.total - invoice.amount_paid, 0))
    for line in lines:
        assert line.amount == int((line.quantity * line.unit_amount).quantize(Decimal(1), rounding="ROUND_HALF_UP"))


@PROPERTY_SETTINGS
@given(old=st.integers(0, 500_000), extra=st.integers(1, 500_000), elapsed=st.floats(0, 1))
def test_upgrade_proration_invoice_adds_up_and_credits_unused_time(old, extra, elapsed):
    with transaction.atomic():
        small, big = PlanFactory(amount=old), PlanFactory(amount=old + extra)
        sub = make_due_subscription(plan=small)
        period = sub.current_period_end - sub.current_period_start
        now = sub.current_period_start + timedelta(seconds=int(period.total_seconds() * elapsed))
        change = subscription_change_plan(subscription=sub, new_plan=big, actor=ACTOR, now=now)
        invoice = change.invoice
        invoice.refresh_from_db()
        _assert_adds_up(invoice)
        unused, remaining = invoice.lines.order_by("id")
        assert unused.amount <= 0 <= remaining.amount and unused.quantity == remaining.quantity
        exact = Fraction((sub.current_period_end - now).total_seconds()) / Fraction(period.total_seconds())
        assert abs(invoice.subtotal - exact * extra) <= 2  # two lines, each rounded once
        assert invoice.number and invoice.billing_reason == BillingReason.SUBSCRIPTION_UPDATE
        transaction.set_rollback(True)


def test_downgrade_waits_for_period_end_and_nothing_changes_while_paused_or_incomplete():
    big, small = PlanFactory(amount=5000), PlanFactory(amount=1000)
    sub = make_due_subscription(plan=big)
    change = subscription_change_plan(subscription=sub, new_plan=small, actor=ACTOR, now=T0 + timedelta(days=3))
    assert change.effective == "period_end" and change.invoice is None
    sub.refresh_from_db()
    assert sub.plan == big and sub.scheduled_plan == small
    for status in (SubscriptionStatus.PAUSED, SubscriptionStatus.INCOMPLETE):
        other = make_due_subscription(plan=small, status=status)
        with pytest.raises(IllegalTransition):
            subscription_change_plan(subscription=other, new_plan=big, actor=ACTOR, now=T0 + timedelta(days=1))


# A year of random changes: each month, up to two plan changes at random instants, then the renewal.
_month_changes = st.lists(st.tuples(st.floats(0.001, 0.999), st.integers(0, 3)), max_size=2)


@PROPERTY_SETTINGS
@given(amounts=st.lists(st.integers(0, 100_000), min_size=4, max_size=4, unique=True),
       start_plan=st.integers(0, 3), months=st.lists(_month_changes, min_size=12, max_size=12))
def test_a_year_of_changes_and_renewals_has_no_rounding_drift(collect_outcomes, amounts, start_plan, months):
    collect_outcomes[0]["outcome"] = "succeeded"
    with transaction.atomic():
        plans = [PlanFactory(amount=a, credits_per_period=0) for a in amounts]
        # A saved card: the scripted gateway collects each invoice.
        customer = StripeCustomerFactory(user=None, stripe_default_payment_method_id="pm_card_visa")
        sub = make_due_subscription(plan=plans[start_plan], customer=customer)
        current, scheduled = plans[start_plan], None
        exact = Fraction(0)  # what the year costs, computed directly with exact fractions
        for changes in months:
            sub.refresh_from_db()
            start, end = sub.current_period_start, sub.current_period_end
            length = Fraction((end - start).total_seconds())
            instants = sorted(start + timedelta(seconds=int(float(length) * f)) for f, _ in changes)
            for when, (_, target) in zip(instants, changes, strict=True):
                new = plans[target]
                if new.pk == current.pk:
                    continue
                subscription_change_plan(subscription=sub, new_plan=new, actor=ACTOR, now=when)
                if new.amount < current.amount:
                    scheduled = new
                else:
                    remaining = Fraction((end - when).total_seconds()) / length
                    exact += remaining * (new.amount - current.amount)
                    current, scheduled = new, None
            billing_run(as_of=end)
            current, scheduled = scheduled or current, None
            exact += current.amount  # the next period's fee, billed in advance at this renewal
        invoices = list(Invoice.objects.filter(customer=sub.customer))
        for invoice in invoices:
            _assert_adds_up(invoice)
        line_count = InvoiceLine.objects.filter(invoice__customer=sub.customer).count()
        billed = sum(invoice.total for invoice in invoices)
        assert abs(billed - exact) <= line_count
        assert billing_verify() == []
        sub.refresh_from_db()
        assert sub.status == SubscriptionStatus.ACTIVE and sub.plan_id == current.pk
        transaction.set_rollback(True)


def test_proration_on_a_rounding_boundary_is_exact_where_float_seconds_were_off_by_one_minor_unit():
    """Jan 31 - Feb 28 (28 days): 604801.2096 s before the end, exactly 0.2500005 of the period is left,
    which rounds half-up to 0.250001. Through float `total_seconds()` the quotient came out just below the
    half and rounded to 0.250000, and on $10,000 -> $20,000 plans the invoice was one cent short."""
    old, new = PlanFactory(amount=1_000_000), PlanFactory(amount=2_000_000)
    sub = make_due_subscription(plan=old)
    remaining = timedelta(seconds=604_801, microseconds=209_600)
    assert Fraction(remaining // timedelta(microseconds=1), (sub.current_period_end - sub.current_period_start)
                    // timedelta(microseconds=1)) == Fraction(2_500_005, 10_000_000)

    change = subscription_change_plan(subscription=sub, new_plan=new, actor=ACTOR,
                                      now=sub.current_period_end - remaining)

    unused, rest = change.invoice.lines.order_by("id")
    assert unused.quantity == rest.quantity == Decimal("0.250001")
    assert (unused.amount, rest.amount, change.invoice.total) == (-250_001, 500_002, 250_001)
    # The same as rounding the exact fraction of the price difference once: 250000.5 -> 250001.
    assert change.invoice.total == int((Decimal(2_500_005) / Decimal(10_000_000) * 1_000_000).quantize(
        Decimal(1), rounding="ROUND_HALF_UP"))
