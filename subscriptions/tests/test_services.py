from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from core.audit import Actor
from core.exceptions import IllegalTransition, InvalidOperation
from subscriptions.models import Subscription, SubscriptionEvent, SubscriptionEventKind, SubscriptionStatus
from subscriptions.services import (
    ALLOWED_SUBSCRIPTION_TRANSITIONS,
    StatusMove,
    customer_create,
    subscription_cancel,
    subscription_create,
    subscription_lock,
    subscription_pause,
    subscription_resume,
    subscription_transition,
    subscription_transition_many,
)
from subscriptions.tests.factories import CustomerFactory, PlanFactory, StaffUserFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

S = SubscriptionStatus
NOW = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)
ACTOR = Actor.system("test")


def events(subscription):
    return list(SubscriptionEvent.objects.filter(subscription=subscription).order_by("id"))


def test_customer_create_normalises_currency_and_validates():
    customer = customer_create(name="Acme", email="billing@acme.test", currency="eur", external_id="acme-1")

    assert customer.currency == "EUR"
    assert customer.external_id == "acme-1"
    with pytest.raises(ValidationError):
        customer_create(name="Broken", email="not-an-email")


def test_customer_create_defaults_to_the_configured_currency(settings):
    settings.DEFAULT_CURRENCY = "GBP"

    assert customer_create(name="Acme", email="a@acme.test").currency == "GBP"


def test_free_plan_starts_active_for_one_period():
    customer, plan = CustomerFactory(), PlanFactory(amount=0, trial_days=0)

    subscription = subscription_create(customer=customer, plan=plan, actor=ACTOR, now=NOW)

    assert subscription.status == S.ACTIVE
    assert (subscription.current_period_start, subscription.current_period_end) == (NOW, datetime(2025, 2, 28, 10,
                                                                                                 tzinfo=UTC))
    [created] = events(subscription)
    assert (created.kind, created.to_status, created.to_plan, created.actor_label) == (
        SubscriptionEventKind.CREATED, S.ACTIVE, plan, "system:test")


def test_trial_is_its_own_period_and_anchors_the_first_paid_one():
    customer, plan = CustomerFactory(), PlanFactory(amount=999, trial_days=14)

    subscription = subscription_create(customer=customer, plan=plan, actor=ACTOR, now=NOW)

    assert subscription.status == S.TRIALING
    assert subscription.trial_start == NOW
    assert subscription.trial_end == NOW + timedelta(days=14)
    assert subscription.billing_cycle_anchor == subscription.trial_end == subscription.current_period_end


def test_paid_plan_without_trial_starts_incomplete():
    customer, plan = CustomerFactory(), PlanFactory(amount=999, trial_days=14)

    subscription = subscription_create(customer=customer, plan=plan, actor=ACTOR, now=NOW, with_trial=False)

    assert subscription.status == S.INCOMPLETE
    assert subscription.trial_end is None


def test_subscription_create_refuses_inactive_plans_other_currencies_and_a_second_live_subscription():
    customer = CustomerFactory(currency="USD")

    with pytest.raises(InvalidOperation) as inactive:
        subscription_create(customer=customer, plan=PlanFactory(is_active=False), actor=ACTOR)
    with pytest.raises(InvalidOperation) as currency:
        subscription_create(customer=customer, plan=PlanFactory(currency="EUR"), actor=ACTOR)
    subscription_create(customer=customer, plan=PlanFactory(amount=0), actor=ACTOR)
    with pytest.raises(IllegalTransition) as exists:
        subscription_create(customer=customer, plan=PlanFactory(amount=0), actor=ACTOR)

    assert (inactive.value.code, currency.value.code, exists.value.code) == (
        "plan_inactive", "currency_mismatch", "subscription_exists")
    assert customer.subscriptions.count() == 1


def test_a_customer_may_subscribe_again_after_canceling():
    old = SubscriptionFactory(status=S.CANCELED)

    new = subscription_create(customer=old.customer, plan=PlanFactory(amount=0), actor=ACTOR)

    assert new.status == S.ACTIVE


@pytest.mark.parametrize(("from_status", "to_status"), [
    (from_status, to_status)
    for from_status in S.values for to_status in S.values
    if to_status not in ALLOWED_SUBSCRIPTION_TRANSITIONS[from_status]
])
def test_illegal_transitions_are_refused_and_change_nothing(from_status, to_status):
    subscription = SubscriptionFactory(status=from_status)

    with pytest.raises(IllegalTransition) as refused:
        subscription_transition(subscription=subscription_lock(subscription_id=subscription.pk), to_status=to_status,
                                actor=ACTOR)

    assert refused.value.http_status == 409
    subscription.refresh_from_db()
    assert subscription.status == from_status
    assert events(subscription) == []


def test_transition_writes_who_when_from_to_and_why():
    staff = StaffUserFactory()
    subscription = SubscriptionFactory(status=S.ACTIVE)

    subscription_transition(subscription=subscription, to_status=S.PAST_DUE, actor=Actor.of_user(staff),
                            reason="card declined", now=NOW, data={"invoice": 7})

    [event] = events(subscription)
    assert (event.kind, event.from_status, event.to_status, event.reason, event.data) == (
        SubscriptionEventKind.STATUS_CHANGED, S.ACTIVE, S.PAST_DUE, "card declined", {"invoice": 7})
    assert (event.actor, event.actor_label) == (staff, staff.username)


def test_cancel_now_ends_the_subscription():
    subscription = SubscriptionFactory(status=S.ACTIVE)

    subscription_cancel(subscription=subscription, actor=ACTOR, reason="asked by phone", now=NOW)

    subscription.refresh_from_db()
    assert subscription.status == S.CANCELED
    assert subscription.canceled_at == subscription.ended_at == NOW
    assert events(subscription)[-1].to_status == S.CANCELED


def test_cancel_at_period_end_schedules_once():
    subscription = SubscriptionFactory(status=S.ACTIVE)

    subscription_cancel(subscription=subscription, actor=ACTOR, at_period_end=True, now=NOW)
    subscription_cancel(subscription=subscription, actor=ACTOR, at_period_end=True, now=NOW + timedelta(hours=1))

    subscription.refresh_from_db()
    assert subscription.status == S.ACTIVE
    assert subscription.cancel_at_period_end
    assert subscription.canceled_at == NOW
    assert [e.kind for e in events(subscription)] == [SubscriptionEventKind.CANCEL_SCHEDULED]


def test_canceling_a_canceled_subscription_is_refused():
    subscription = SubscriptionFactory(status=S.CANCELED)

    with pytest.raises(IllegalTransition):
        subscription_cancel(subscription=subscription, actor=ACTOR)
    with pytest.raises(IllegalTransition):
        subscription_cancel(subscription=subscription, actor=ACTOR, at_period_end=True)

    assert events(subscription) == []


def test_cancel_after_a_scheduled_cancel_keeps_the_original_request_time():
    subscription = SubscriptionFactory(status=S.ACTIVE)
    subscription_cancel(subscription=subscription, actor=ACTOR, at_period_end=True, now=NOW)

    subscription_cancel(subscription=subscription, actor=ACTOR, now=NOW + timedelta(days=3))

    subscription.refresh_from_db()
    assert subscription.status == S.CANCELED
    assert subscription.canceled_at == NOW
    assert subscription.ended_at == NOW + timedelta(days=3)
    assert not subscription.cancel_at_period_end


def test_pause_and_resume():
    subscription = SubscriptionFactory(status=S.ACTIVE)

    subscription_pause(subscription=subscription, actor=ACTOR, now=NOW)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.paused_at) == (S.PAUSED, NOW)

    subscription_resume(subscription=subscription, actor=ACTOR, now=NOW + timedelta(days=2))
    subscription.refresh_from_db()
    assert (subscription.status, subscription.paused_at) == (S.ACTIVE, None)
    assert [(e.from_status, e.to_status) for e in events(subscription)] == [(S.ACTIVE, S.PAUSED),
                                                                           (S.PAUSED, S.ACTIVE)]


def test_resume_withdraws_a_scheduled_cancellation():
    subscription = SubscriptionFactory(status=S.ACTIVE)
    subscription_cancel(subscription=subscription, actor=ACTOR, at_period_end=True, now=NOW)

    subscription_resume(subscription=subscription, actor=ACTOR)

    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end
    assert subscription.canceled_at is None
    assert [e.kind for e in events(subscription)] == [SubscriptionEventKind.CANCEL_SCHEDULED,
                                                      SubscriptionEventKind.CANCEL_UNSCHEDULED]


@pytest.mark.parametrize("status", [S.ACTIVE, S.CANCELED, S.INCOMPLETE])
def test_resume_with_nothing_to_resume_is_refused(status):
    subscription = SubscriptionFactory(status=status)

    with pytest.raises(IllegalTransition) as refused:
        subscription_resume(subscription=subscription, actor=ACTOR)

    assert refused.value.code == "nothing_to_resume"
    assert events(subscription) == []


def test_pausing_a_canceled_subscription_is_refused():
    subscription = SubscriptionFactory(status=S.CANCELED)

    with pytest.raises(IllegalTransition):
        subscription_pause(subscription=subscription, actor=ACTOR)

    subscription.refresh_from_db()
    assert subscription.status == S.CANCELED
    assert subscription.paused_at is None


def test_bulk_transition_moves_the_legal_ones_refuses_the_rest_and_audits_in_constant_queries(
        django_assert_num_queries):
    S = SubscriptionStatus
    active, trialing, paused, canceled = (SubscriptionFactory(status=status) for status in
                                          (S.ACTIVE, S.TRIALING, S.PAUSED, S.CANCELED))
    moves = [StatusMove(subscription_id=sub.pk, to_status=S.PAST_DUE, reason="payment failed")
             for sub in (active, trialing, paused, canceled)]

    # One locking read and one UPDATE (plus the COPY of the audit rows, which Django's query log does not see);
    # which events outbound webhook endpoints want is known to the process (outbound_webhooks.selectors). The
    # subscriptions-at-a-date rollups add three: the states before, the month's and the instant's increments.
    with django_assert_num_queries(5):
        moved = subscription_transition_many(moves=moves, actor=ACTOR, now=NOW)

    assert sorted(moved) == sorted([active.pk, trialing.pk])
    statuses = dict(Subscription.objects.values_list("pk", "status"))
    assert statuses == {active.pk: S.PAST_DUE, trialing.pk: S.PAST_DUE, paused.pk: S.PAUSED, canceled.pk: S.CANCELED}
    trail = set(SubscriptionEvent.objects.filter(kind=SubscriptionEventKind.STATUS_CHANGED)
                .values_list("subscription_id", "from_status", "to_status", "reason"))
    assert trail == {(active.pk, S.ACTIVE, S.PAST_DUE, "payment failed"),
                     (trialing.pk, S.TRIALING, S.PAST_DUE, "payment failed")}


def test_bulk_cancel_at_period_end_sets_what_a_single_cancel_sets_at_the_period_end():
    S = SubscriptionStatus
    scheduled = SubscriptionFactory(status=S.ACTIVE, cancel_at_period_end=True, canceled_at=NOW)
    paused = SubscriptionFactory(status=S.PAUSED, paused_at=NOW)

    subscription_transition_many(moves=[StatusMove(subscription_id=s.pk, to_status=S.CANCELED)
                                        for s in (scheduled, paused)],
                                 actor=ACTOR, now=NOW + timedelta(days=40), at_period_end=True)

    for sub in (scheduled, paused):
        sub.refresh_from_db()
        assert sub.status == S.CANCELED and sub.ended_at == sub.current_period_end
        assert sub.cancel_at_period_end is False and sub.paused_at is None
    assert scheduled.canceled_at == NOW and paused.canceled_at == paused.current_period_end
