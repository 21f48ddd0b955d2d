"""A stored webhook event applied by a real `manage.py procrastinate worker` on the test database."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from procrastinate.contrib.django.models import ProcrastinateJob

from billing_project.tests.server_support import database_url_of_the_tests
from payments.models import PaymentStatus, ProviderEventStatus
from payments.providers.inbox import PROVIDER_EVENT_APPLY_TASK
from payments.providers.stripe.models import StripeEvent
from payments.tests.providers.stripe.test_webhooks import stripe_payment_for_new_invoice, succeeded_event
from payments.tests.stripe_support import deliver

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_worker_applies_a_stored_delivery_once(client, webhook_secret):
    payment = stripe_payment_for_new_invoice()
    event = succeeded_event(payment)
    assert deliver(client, event, apply=False).status_code == 200
    assert deliver(client, event, apply=False).json()["duplicate"] is True
    assert StripeEvent.objects.get().status == ProviderEventStatus.PENDING

    env = {**os.environ, "DATABASE_URL": database_url_of_the_tests(), "PYTHONPATH": str(ROOT),
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend", "LOG_LEVEL": "WARNING"}
    worker = subprocess.run([sys.executable, "manage.py", "procrastinate", "worker", "--queues=default",
                             "--one-shot"], cwd=ROOT, env=env, capture_output=True, timeout=120)

    assert worker.returncode == 0, worker.stderr.decode()
    payment.refresh_from_db()
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == (ProviderEventStatus.PROCESSED, 1)
    assert payment.status == PaymentStatus.SUCCEEDED and payment.status_changes.count() == 1
    job = ProcrastinateJob.objects.get(task_name=PROVIDER_EVENT_APPLY_TASK)
    assert (job.status, job.args) == ("succeeded", {"provider_event_id": stored.pk})
