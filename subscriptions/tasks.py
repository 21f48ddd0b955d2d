"""Jobs of the subscriptions app (thin: they call services)."""

from datetime import timedelta

from django.conf import settings
from procrastinate.contrib.django import app

from core.jobs import jobs_retry_strategy
from core.jobs_maintenance import PERIODIC_QUEUE
from subscriptions import emails
from subscriptions.services import idempotency_keys_purge


@app.task(name=emails.SUBSCRIPTION_CANCELED_TASK, retry=jobs_retry_strategy())
def subscription_canceled_email(*, subscription_id: int) -> None:
    emails.subscription_canceled_email_send(subscription_id=subscription_id)


@app.task(name=emails.TRIAL_ENDING_TASK, retry=jobs_retry_strategy())
def trial_ending_email(*, subscription_id: int) -> None:
    emails.trial_ending_email_send(subscription_id=subscription_id)


@app.periodic(cron=settings.TRIAL_REMINDER_CRON, periodic_id="trial_reminders")
@app.task(name="subscriptions.trial_reminders", queue=PERIODIC_QUEUE, retry=jobs_retry_strategy())
def trial_reminders(timestamp: int) -> int:
    return emails.trial_reminders_schedule()


@app.periodic(cron=settings.IDEMPOTENCY_KEYS_PURGE_CRON, periodic_id="idempotency_keys_purge")
@app.task(name="subscriptions.idempotency_keys_purge", queue=PERIODIC_QUEUE, retry=jobs_retry_strategy())
def idempotency_keys_purge_periodic(timestamp: int) -> int:
    """Idempotency-Key records older than a day (the retention docs/api.md promises) are removed."""
    return idempotency_keys_purge(older_than=timedelta(hours=24))
