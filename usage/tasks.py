"""Jobs of the usage app (thin: they call a service)."""

from procrastinate.contrib.django import app

from core.jobs import jobs_retry_strategy
from usage import emails
from usage.thresholds import USAGE_ALERT_TASK


@app.task(name=USAGE_ALERT_TASK, retry=jobs_retry_strategy())
def usage_alert_email(*, alert_id: int) -> None:
    emails.usage_alert_email_send(alert_id=alert_id)
