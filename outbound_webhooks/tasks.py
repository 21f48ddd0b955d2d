"""Jobs of the outbound webhooks (thin: they call the services).

A failed attempt (the receiver refused or was unreachable) is not an error of the job: the service
records it and defers the next attempt at its scheduled time, so the backoff spans
OUTBOUND_WEBHOOKS_RETRY_WINDOW (3 days by default) and every attempt is in the delivery log."""

from procrastinate.contrib.django import app

from core.jobs import jobs_retry_strategy
from outbound_webhooks import services


@app.task(name=services.WEBHOOK_DELIVER_TASK, retry=jobs_retry_strategy())
def webhook_deliver(*, delivery_id: int, manual: bool = False) -> None:
    services.webhook_delivery_attempt(delivery_id=delivery_id, manual=manual)


@app.task(name=services.WEBHOOK_ENDPOINT_DISABLED_EMAIL_TASK, retry=jobs_retry_strategy())
def endpoint_disabled_email(*, endpoint_id: int) -> None:
    services.webhook_endpoint_disabled_email(endpoint_id=endpoint_id)
