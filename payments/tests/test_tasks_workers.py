"""The billing run on real workers (`manage.py procrastinate worker` processes on the test database):
several workers share one run, and a worker killed mid-job loses nothing."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.db.models import Count
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob

from billing_project.tests.server_support import database_url_of_the_tests
from core.jobs import job_defer, jobs_defer_many
from core.jobs_maintenance import jobs_stalled_requeue
from notifications.models import EmailLog, EmailStatus
from payments.models import Invoice, InvoiceNumberSequence
from payments.tasks import BILLING_RUN_SHARE_TASK
from payments.tests.conftest import make_due_subscription
from subscriptions.tests.factories import PlanFactory

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _worker(*args: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url_of_the_tests(), "PYTHONPATH": str(ROOT),
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend", "LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "manage.py", "procrastinate", "worker", "--queues=default", *args],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(condition, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the worker exited before {what}: {process.stderr.read().decode()}")
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def _assert_every_subscription_billed_and_emailed_once(count: int) -> None:
    per_period = Invoice.objects.values("subscription_id", "period_start").annotate(n=Count("id"))
    assert len(per_period) == count and {row["n"] for row in per_period} == {1}
    emails = EmailLog.objects.filter(kind="invoice_finalized")
    assert emails.count() == count and set(emails.values_list("status", flat=True)) == {EmailStatus.SENT}
    assert not ProcrastinateJob.objects.filter(queue_name="default").exclude(status="succeeded").exists()


def test_two_workers_share_the_billing_run_and_email_every_invoice_once():
    plan = PlanFactory(credits_per_period=10)
    for _ in range(60):
        make_due_subscription(plan=plan)
    with transaction.atomic():
        jobs_defer_many(name=BILLING_RUN_SHARE_TASK,
                        kwargs_list=[{"as_of": int(FEB_28.timestamp()), "share": n} for n in range(2)])
    workers = [_worker("--one-shot", f"--name=worker-{n}") for n in range(2)]
    for worker in workers:
        assert worker.wait(timeout=120) == 0, worker.stderr.read().decode()
    _assert_every_subscription_billed_and_emailed_once(60)


def test_a_worker_killed_mid_job_loses_nothing(settings):
    plan = PlanFactory(credits_per_period=10)
    for _ in range(20):
        make_due_subscription(plan=plan)
    InvoiceNumberSequence.objects.create(year=FEB_28.year, last_number=0)
    with psycopg.connect(database_url_of_the_tests(), autocommit=False) as blocker:
        # Hold the invoice counter: the worker's billing run renews its first batch, then waits for the
        # counter inside its batch transaction, mid-job.
        blocker.execute("SELECT 1 FROM payments_invoicenumbersequence WHERE year = %s FOR UPDATE", [FEB_28.year])
        with transaction.atomic():
            job_defer(name=BILLING_RUN_SHARE_TASK, as_of=int(FEB_28.timestamp()), share=0)
        doomed = _worker("--name=doomed")
        _wait_for(lambda: _backend_waiting_on_a_lock(), "the job waiting mid-run", doomed)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        blocker.rollback()
    assert ProcrastinateJob.objects.get(task_name=BILLING_RUN_SHARE_TASK).status == "doing"
    assert not Invoice.objects.exists()  # its batch died with it

    settings.JOBS_STALLED_AFTER_SECONDS = 0  # no live worker here: every worker's heartbeat is stale
    assert async_to_sync(jobs_stalled_requeue.func)(_Context(), timestamp=0) == 1
    survivor = _worker("--one-shot", "--name=survivor")
    assert survivor.wait(timeout=120) == 0, survivor.stderr.read().decode()

    job = ProcrastinateJob.objects.get(task_name=BILLING_RUN_SHARE_TASK)
    assert (job.status, job.attempts) == ("succeeded", 2)
    _assert_every_subscription_billed_and_emailed_once(20)


class _Context:
    """The job context the periodic requeue task reads: the app whose job manager it uses."""

    app = app


def _backend_waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock' AND query ILIKE %s", ["%payments_invoicenumbersequence%"])
        return cursor.fetchone()[0] > 0
