"""Jobs of the notifications app (thin: they call the services)."""

from procrastinate.contrib.django import app

from core.jobs import jobs_retry_strategy
from notifications import services


@app.task(name="notifications.email_resend", retry=jobs_retry_strategy())
def email_resend(*, email_log_id: int) -> None:
    services.email_resend(email_log_id=email_log_id)
