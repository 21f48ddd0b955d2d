"""Jobs of the credits app (thin: they call services)."""

from procrastinate.contrib.django import app

from core.jobs import jobs_retry_strategy
from credits import emails


@app.task(name=emails.CREDITS_LOW_TASK, retry=jobs_retry_strategy())
def credits_low_email(*, ledger_entry_id: int) -> None:
    emails.credits_low_email_send(ledger_entry_id=ledger_entry_id)
