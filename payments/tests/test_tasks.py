"""The periodic billing run: a tick splits the run into jobs, each runs `billing run` as of the tick."""

from datetime import UTC, datetime

import pytest

from core.tests.jobs_support import jobs_queued, jobs_run_queued
from payments.models import Invoice
from payments.tasks import BILLING_RUN_SHARE_TASK, billing_run_tick
from payments.tests.conftest import make_due_subscription
from subscriptions.tests.factories import PlanFactory

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def test_a_tick_queues_the_configured_number_of_shares_of_the_run(settings):
    settings.BILLING_RUN_JOBS = 3
    billing_run_tick(timestamp=int(FEB_28.timestamp()))
    assert [job.args for job in jobs_queued(task_name=BILLING_RUN_SHARE_TASK)] == [
        {"as_of": int(FEB_28.timestamp()), "share": n} for n in range(3)]


def test_the_shares_of_a_tick_bill_what_is_due_at_the_tick_once():
    plan = PlanFactory()
    subscriptions = [make_due_subscription(plan=plan) for _ in range(4)]
    billing_run_tick(timestamp=int(FEB_28.timestamp()))
    assert jobs_run_queued(task_name=BILLING_RUN_SHARE_TASK) == 2
    assert sorted(Invoice.objects.values_list("subscription_id", flat=True)) == sorted(s.pk for s in subscriptions)
