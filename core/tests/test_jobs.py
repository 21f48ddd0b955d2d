"""The job seam on PostgreSQL: enqueued by the caller's transaction, retried with exponential backoff,
periodic ticks deferred once however many schedulers run."""

from datetime import UTC, datetime

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.jobs import Job, JobDeferrer
from procrastinate.manager import JobManager
from procrastinate.periodic import PeriodicDeferrer

from core.jobs import job_defer, jobs_defer_many, jobs_retry_strategy, jobs_suppressed
from core.tests.jobs_support import jobs_queued

TICK_TASK = "subscriptions.idempotency_keys_purge"
SHARE_TASK = "payments.billing_run_share"


@pytest.mark.django_db
def test_a_job_deferred_in_a_transaction_is_queued_with_it():
    with transaction.atomic():
        job_defer(name=SHARE_TASK, as_of=1, share=0)
    [job] = jobs_queued(task_name=SHARE_TASK)
    assert job.args == {"as_of": 1, "share": 0}
    assert job.queue_name == "default"


@pytest.mark.django_db
def test_a_job_deferred_in_a_rolled_back_transaction_is_never_queued():
    with pytest.raises(RuntimeError), transaction.atomic():
        jobs_defer_many(name=SHARE_TASK, kwargs_list=[{"as_of": 1, "share": n} for n in range(3)])
        assert len(jobs_queued(task_name=SHARE_TASK)) == 3  # written by this transaction...
        raise RuntimeError("the work failed")
    assert jobs_queued(task_name=SHARE_TASK) == []  # ...and gone with it


@pytest.mark.django_db
def test_a_batch_is_queued_as_procrastinates_own_defer_queues_it(django_assert_num_queries):
    kwargs_list = [{"as_of": 1, "share": n, "note": 'quote " and backslash \\ survive'} for n in range(3)]
    with transaction.atomic(), django_assert_num_queries(1):
        jobs_defer_many(name=SHARE_TASK, kwargs_list=kwargs_list)
    ours = jobs_queued(task_name=SHARE_TASK)
    with transaction.atomic():
        JobDeferrer(job_manager=JobManager(DjangoConnector()),
                    job=app.tasks[SHARE_TASK].configure().job).batch_defer(*kwargs_list)
    theirs = jobs_queued(task_name=SHARE_TASK)[len(ours):]
    fields = ("queue_name", "task_name", "priority", "lock", "queueing_lock", "args", "scheduled_at", "status",
              "attempts")

    def shape(jobs):
        return [tuple(getattr(job, name) for name in fields) for job in jobs]

    assert [job.args for job in ours] == kwargs_list  # in order
    assert shape(ours) == shape(theirs)


@pytest.mark.django_db
def test_deferring_nothing_writes_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        jobs_defer_many(name=SHARE_TASK, kwargs_list=[])
    assert jobs_queued(task_name=SHARE_TASK) == []


def test_retries_wait_exponentially_longer(settings):
    settings.JOBS_RETRY_MAX_ATTEMPTS, settings.JOBS_RETRY_BACKOFF_BASE_SECONDS = 4, 3
    strategy = jobs_retry_strategy()
    job = Job(queue="default", lock=None, queueing_lock=None, task_name=SHARE_TASK)
    waits = []
    for attempts in range(4):
        before = datetime.now(UTC)
        decision = strategy.get_retry_decision(exception=RuntimeError(), job=job.evolve(attempts=attempts))
        waits.append(round((decision.retry_at - before).total_seconds()))
    assert waits == [3, 9, 27, 81]
    assert strategy.get_retry_decision(exception=RuntimeError(), job=job.evolve(attempts=4)) is None


def test_every_task_of_ours_retries_with_the_shared_strategy():
    # Procrastinate's built-in tasks and the engine's upkeep (core.jobs_*, every minute or hour: the next
    # tick is their retry) aside.
    ours = [task for name, task in app.tasks.items() if name.split(".")[0] in
            {"notifications", "subscriptions", "credits", "usage", "payments"}]
    assert len(ours) >= 10
    assert all(task.retry_strategy == jobs_retry_strategy() for task in ours)


@pytest.mark.django_db
def test_a_periodic_tick_is_deferred_once_however_many_schedulers_run():
    periodic = next(p for p in app.periodic_registry.periodic_tasks.values() if p.task.name == TICK_TASK)
    tick = int(datetime(2026, 12, 1, 3, 30, tzinfo=UTC).timestamp())
    schedulers = [PeriodicDeferrer(registry=app.periodic_registry) for _ in range(3)]
    for scheduler in schedulers:
        async_to_sync(scheduler.defer_jobs)([(periodic, tick)])
    async_to_sync(schedulers[0].defer_jobs)([(periodic, tick + 86400)])  # the next day's tick is another job
    assert [job.args["timestamp"] for job in jobs_queued(task_name=TICK_TASK)] == [tick, tick + 86400]


def test_the_periodic_schedule_covers_the_billing_run_reminders_and_purges():
    names = {p.task.name for p in app.periodic_registry.periodic_tasks.values()}
    assert {"payments.billing_run_tick", "subscriptions.trial_reminders", "subscriptions.idempotency_keys_purge",
            "core.jobs_stalled_requeue", "core.jobs_finished_delete"} <= names


@pytest.mark.django_db
def test_work_done_while_jobs_are_suppressed_defers_nothing():
    with jobs_suppressed(), transaction.atomic():
        job_defer(name=SHARE_TASK, as_of=1, share=0)
    job_defer(name=SHARE_TASK, as_of=2, share=0)  # and only inside
    assert [job.args["as_of"] for job in jobs_queued(task_name=SHARE_TASK)] == [2]
