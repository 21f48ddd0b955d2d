"""The subscription side of the MRR rollups: ending a subscription (now, or a batch at period end) takes
its fees out of its customer's months from then on, in the same transaction; and the month arithmetic the
rollups rest on."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.audit import Actor
from subscriptions.models import CustomerMrrMonth, MrrMonth, Subscription, SubscriptionFeeMonth, SubscriptionStatus
from subscriptions.mrr_rollups import customer_mrr_refresh, month_contributions, months_covered
from subscriptions.periods import add_months
from subscriptions.services import StatusMove, subscription_cancel, subscription_transition_many
from subscriptions.tests.factories import CustomerFactory, PlanFactory

JAN = datetime(2026, 1, 1, tzinfo=UTC)
ACTOR = Actor.system("test:rollups")


def _paying(months: int, amount: int = 1000) -> Subscription:
    """A subscription with a monthly fee in force at the first `months` month starts from January."""
    sub = Subscription.objects.create(customer=CustomerFactory(), plan=PlanFactory(), status=SubscriptionStatus.ACTIVE,
                                      billing_cycle_anchor=JAN, current_period_start=add_months(JAN, months - 1),
                                      current_period_end=add_months(JAN, months))
    SubscriptionFeeMonth.objects.bulk_create([SubscriptionFeeMonth(
        subscription=sub, customer=sub.customer, currency="USD", month=add_months(JAN, n), unit_amount=Decimal(amount),
        period_months=1) for n in range(months)])
    customer_mrr_refresh(customer_ids=[sub.customer_id])
    return sub


def _mrr(month: datetime) -> int:
    row = MrrMonth.objects.filter(currency="USD", month=month).first()
    return row.mrr if row else 0


def test_months_covered_are_the_month_starts_inside_the_period():
    assert months_covered(start=JAN, end=add_months(JAN, 2)) == [JAN, add_months(JAN, 1)]
    assert months_covered(start=JAN + timedelta(days=3), end=add_months(JAN, 1) + timedelta(days=3)) == [
        add_months(JAN, 1)]
    assert months_covered(start=JAN + timedelta(days=3), end=JAN + timedelta(days=20)) == []


def test_contributions_classify_each_customers_move_once():
    months = {(1, "USD", JAN): 1000, (1, "USD", add_months(JAN, 1)): 1500, (2, "USD", add_months(JAN, 1)): 700}
    totals = month_contributions(months=months, first_paid={1: JAN, 2: JAN - timedelta(days=90)})
    # [mrr, covered, paying, new, expansion, contraction, churned, reactivated, customers churned]
    assert totals[("USD", JAN)] == [1000, 1, 1, 0, 500, 0, 0, 700, 0]
    assert totals[("USD", add_months(JAN, 1))] == [2200, 2, 2, 0, 0, 0, -2200, 0, 2]
    assert totals[("USD", add_months(JAN, -1))] == [0, 0, 0, 1000, 0, 0, 0, 0, 0]


@pytest.mark.django_db
def test_canceling_now_ends_the_fees_from_the_next_month_start():
    sub = _paying(months=4)
    assert [_mrr(add_months(JAN, n)) for n in range(5)] == [1000, 1000, 1000, 1000, 0]
    subscription_cancel(subscription=sub, actor=ACTOR, now=add_months(JAN, 1) + timedelta(days=10))
    assert [_mrr(add_months(JAN, n)) for n in range(5)] == [1000, 1000, 0, 0, 0]
    window = MrrMonth.objects.get(currency="USD", month=add_months(JAN, 1))
    assert (window.churned, window.customers_churned) == (-1000, 1)
    assert not CustomerMrrMonth.objects.filter(month__gte=add_months(JAN, 2)).exists()


@pytest.mark.django_db
def test_a_batch_ended_at_period_end_refreshes_every_customer_of_the_batch():
    subs = [_paying(months=3), _paying(months=3, amount=2500)]
    Subscription.objects.filter(pk=subs[0].pk).update(current_period_start=JAN, current_period_end=add_months(JAN, 1))
    subscription_transition_many(moves=[StatusMove(subscription_id=s.pk, to_status=SubscriptionStatus.CANCELED)
                                        for s in subs], actor=ACTOR, now=JAN, at_period_end=True)
    # The first ends at its period end (February 1st), the second at its own (April 1st).
    assert [_mrr(add_months(JAN, n)) for n in range(4)] == [3500, 2500, 2500, 0]
    assert Subscription.objects.get(pk=subs[1].pk).ended_at == add_months(JAN, 3)
