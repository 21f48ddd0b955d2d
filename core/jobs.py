"""The one seam between the apps and the job engine (Procrastinate, docs/jobs.md).

On PostgreSQL a job is a row written by the caller's own transaction: it exists only if that
transaction commits, and a worker (`manage.py procrastinate worker`) runs it, retrying with exponential
backoff. On the embedded default (SQLite, no services) Procrastinate has no tables, so the job runs in
this process right after the commit instead; it is never run for rolled-back work either way.

Apps defer by task name, so a service never imports the tasks module that imports it back.
"""

import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.jobs import Job, JobDeferrer
from procrastinate.manager import JobManager

from core.bulk import pg_array

logger = logging.getLogger(__name__)

_DJANGO_JOBS = JobManager(DjangoConnector())

# Tables and functions Procrastinate's migrations create exist on PostgreSQL only.
JOBS_APP_LABEL = "procrastinate"


# Set while building history that already happened (manage.py seed): nothing of it may email anyone now.
_jobs_suppressed: ContextVar[bool] = ContextVar("jobs_suppressed", default=False)


@contextmanager
def jobs_suppressed() -> Iterator[None]:
    """Work done inside defers no job: for writing past events (demo history), whose customers must not
    be emailed today about an invoice of last spring."""
    token = _jobs_suppressed.set(True)
    try:
        yield
    finally:
        _jobs_suppressed.reset(token)


def jobs_retry_strategy() -> RetryStrategy:
    """Exponential backoff shared by every task: base ** (attempt + 1) seconds between tries."""
    return RetryStrategy(max_attempts=settings.JOBS_RETRY_MAX_ATTEMPTS,
                         exponential_wait=settings.JOBS_RETRY_BACKOFF_BASE_SECONDS)


def jobs_are_suppressed() -> bool:
    """True inside `jobs_suppressed()`: callers that record work for jobs (outbound webhook events) skip it."""
    return _jobs_suppressed.get()


def jobs_in_database() -> bool:
    return connection.vendor == "postgresql"


def job_defer(*, name: str, schedule_at: datetime | None = None, **task_kwargs) -> None:
    """Enqueue task `name` with `task_kwargs` as part of the current transaction (see module doc); with
    `schedule_at`, no worker takes it before then (a re-delivery scheduled after a failure)."""
    jobs_defer_many(name=name, kwargs_list=[task_kwargs], schedule_at=schedule_at)


def jobs_defer_many(*, name: str, kwargs_list: Iterable[dict], schedule_at: datetime | None = None) -> None:
    """Enqueue one job of task `name` per kwargs dict, in one statement on PostgreSQL."""
    kwargs_list = list(kwargs_list)
    if not kwargs_list or _jobs_suppressed.get():
        return
    task = app.tasks[name]
    if jobs_in_database():
        job = task.configure(schedule_at=schedule_at).job
        if job.lock is None and job.queueing_lock is None:
            _jobs_insert(job=job, kwargs_list=kwargs_list)
            return
        # Always through Django's connection, hence its open transaction: a worker's app defers through
        # a connection of its own, which would commit the job even if the job's transaction rolled back.
        JobDeferrer(job_manager=_DJANGO_JOBS, job=job).batch_defer(*kwargs_list)
        return
    if schedule_at is not None:
        # The embedded default has no scheduler to wake a job later: a scheduled job is not run there.
        logger.info("job %s scheduled for %s not run: the embedded default has no scheduler", name, schedule_at)
        return
    for task_kwargs in kwargs_list:
        transaction.on_commit(partial(_run_in_process, task=task, task_kwargs=task_kwargs), robust=True)


def _jobs_insert(*, job: Job, kwargs_list: list[dict]) -> None:
    """Many jobs of one task (no lock, no queueing lock) through Procrastinate's own defer function, with
    their arguments as one array parameter of JSON texts, through Django's connection (so in the caller's
    transaction). `JobDeferrer.batch_defer` does the same in the database but builds, logs and adapts a
    Job object per job in Python: about 40 us each, a fifth of the billing run's CPU when every invoice
    of a 2,000-subscription batch defers its emails (docs/decisions.md)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_DEFER_FUNCTION}(ARRAY(SELECT ROW(%s, %s, %s, NULL, NULL, a.args, %s)::{_DEFER_TYPE} "
            "FROM unnest(%s::jsonb[]) WITH ORDINALITY AS a(args, n) ORDER BY a.n))",
            [job.queue, job.task_name, job.priority, job.scheduled_at,
             pg_array(json.dumps(kwargs) for kwargs in kwargs_list)])


# Procrastinate's batch defer function and its argument type (the pinned version's schema, which its
# `defer_jobs` query calls too; pinned by core/tests/test_jobs.py).
_DEFER_FUNCTION = "procrastinate_defer_jobs_v1"
_DEFER_TYPE = "procrastinate_job_to_defer_v1"


def _run_in_process(*, task, task_kwargs: dict) -> None:
    # The embedded default has no worker: the job runs once, here, after the commit; a failure is
    # logged (robust on_commit) instead of failing the request whose work already committed.
    logger.info("running job %s in process", task.name)
    task(**task_kwargs)


class JobsDatabaseRouter:
    """Procrastinate's migrations are PostgreSQL SQL: on SQLite they are skipped (jobs run in process)."""

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == JOBS_APP_LABEL:
            from django.db import connections

            return connections[db].vendor == "postgresql"
        return None
