"""Demo history is the past: seeding it emails nobody (the jobs its services would defer are suppressed)."""

import pytest
from django.core.management import call_command
from procrastinate.contrib.django.models import ProcrastinateJob

from notifications.models import EmailLog
from payments.models import Invoice, Payment


@pytest.mark.django_db
def test_seeding_demo_history_queues_no_job_and_sends_no_email(settings):
    settings.DEBUG = True  # the README's local run, with the default staff password
    call_command("seed", demo=2, as_of="2025-06-15T12:00:00Z", stdout=None)
    assert Invoice.objects.exists() and Payment.objects.exists()
    assert not ProcrastinateJob.objects.exists()
    assert not EmailLog.objects.exists()
