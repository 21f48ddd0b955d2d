"""Running the jobs a test deferred, in the test's own thread and transaction.

The worker itself (claims, retries, several processes, a killed one) is exercised by the slow tests
that start `manage.py procrastinate worker`; this runs the same task functions the worker would."""

from django.db import connection
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob


def jobs_queued(*, task_name: str) -> list[ProcrastinateJob]:
    return list(ProcrastinateJob.objects.filter(task_name=task_name, status="todo").order_by("id"))


def jobs_run_queued(*, task_name: str) -> int:
    """Run every queued job of `task_name` once, as a worker would, and take it off the queue (the
    Django model of jobs is read-only); returns how many ran."""
    jobs = jobs_queued(task_name=task_name)
    for job in jobs:
        app.tasks[task_name](**job.args)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM procrastinate_jobs WHERE id = %s", [job.pk])
    return len(jobs)
