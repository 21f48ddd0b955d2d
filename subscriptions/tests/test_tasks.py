"""The subscriptions app's periodic jobs call their services."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.tests.jobs_support import jobs_queued
from subscriptions.emails import TRIAL_ENDING_TASK
from subscriptions.models import ApiIdempotencyKey, SubscriptionStatus
from subscriptions.tasks import idempotency_keys_purge_periodic, trial_reminders
from subscriptions.tests.factories import CustomerFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_the_hourly_check_queues_a_reminder_per_trial_ending_soon(settings):
    settings.TRIAL_REMINDER_DAYS = 3
    trial = SubscriptionFactory(status=SubscriptionStatus.TRIALING, trial_end=timezone.now() + timedelta(days=2))
    assert trial_reminders(timestamp=0) == 1
    assert [job.args for job in jobs_queued(task_name=TRIAL_ENDING_TASK)] == [{"subscription_id": trial.pk}]


def test_the_daily_purge_removes_keys_older_than_a_day():
    customer = CustomerFactory()
    for key in ("old", "new"):
        ApiIdempotencyKey.objects.create(customer=customer, key=key, request_method="POST",
                                         request_path="/api/v1/x/", request_hash="h")
    ApiIdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_keys_purge_periodic(timestamp=0) == 1
    assert list(ApiIdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
