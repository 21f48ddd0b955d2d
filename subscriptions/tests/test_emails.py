"""Subscription emails: canceled (on the cancellation's commit), trial ending in N days (periodic check)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import transaction

from core.audit import Actor
from core.l10n import format_date
from core.tests.jobs_support import jobs_queued, jobs_run_queued
from subscriptions.emails import SUBSCRIPTION_CANCELED_TASK, TRIAL_ENDING_TASK, trial_reminders_schedule
from subscriptions.models import SubscriptionStatus
from subscriptions.services import StatusMove, subscription_cancel, subscription_transition_many
from subscriptions.tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory

ACTOR = Actor.system("test")
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def _subscription(**fields):
    return SubscriptionFactory(customer=CustomerFactory(user=None, email="ada@example.com"),
                               plan=PlanFactory(name="Pro"), **fields)


def test_a_cancellation_sends_one_email_once_it_commits():
    subscription = _subscription()
    subscription_cancel(subscription=subscription, actor=ACTOR)
    assert jobs_run_queued(task_name=SUBSCRIPTION_CANCELED_TASK) == 1
    [message] = mail.outbox
    assert message.subject == "Your Pro subscription is canceled" and message.to == ["ada@example.com"]


def test_a_cancellation_rolled_back_sends_nothing():
    subscription = _subscription()
    with pytest.raises(RuntimeError), transaction.atomic():
        subscription_cancel(subscription=subscription, actor=ACTOR)
        raise RuntimeError("the caller failed")
    assert jobs_queued(task_name=SUBSCRIPTION_CANCELED_TASK) == []


def test_bulk_cancellations_queue_one_email_each_and_other_moves_none():
    canceled, paused = _subscription(), _subscription()
    subscription_transition_many(actor=ACTOR, moves=[
        StatusMove(subscription_id=canceled.pk, to_status=SubscriptionStatus.CANCELED),
        StatusMove(subscription_id=paused.pk, to_status=SubscriptionStatus.PAUSED)])
    assert [j.args for j in jobs_queued(task_name=SUBSCRIPTION_CANCELED_TASK)] == [{"subscription_id": canceled.pk}]


def test_trials_ending_within_the_reminder_window_are_reminded_once(settings):
    settings.TRIAL_REMINDER_DAYS = 3
    soon = _subscription(status=SubscriptionStatus.TRIALING, trial_end=NOW + timedelta(days=3))
    _subscription(status=SubscriptionStatus.TRIALING, trial_end=NOW + timedelta(days=4))  # not yet
    _subscription(status=SubscriptionStatus.ACTIVE, trial_end=NOW + timedelta(days=1))  # converted already
    assert trial_reminders_schedule(now=NOW) == 1
    assert trial_reminders_schedule(now=NOW + timedelta(hours=1)) == 1  # the next hourly check finds it again...
    assert jobs_run_queued(task_name=TRIAL_ENDING_TASK) == 2
    [message] = mail.outbox  # ...and the email log sends it once
    assert message.subject.startswith("Your Pro trial ends in")
    assert format_date(soon.trial_end) in message.body
