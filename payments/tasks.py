"""Jobs of the payments app (thin: they call services). Run by `manage.py procrastinate worker`."""

from datetime import UTC, datetime

from django.conf import settings
from procrastinate.contrib.django import app

from core.jobs import jobs_defer_many, jobs_retry_strategy
from core.jobs_maintenance import PERIODIC_QUEUE
from payments import emails
from payments.billing.run import billing_run

BILLING_RUN_SHARE_TASK = "payments.billing_run_share"


@app.periodic(cron=settings.BILLING_RUN_CRON, periodic_id="billing_run")
@app.task(name="payments.billing_run_tick", queue=PERIODIC_QUEUE, retry=jobs_retry_strategy())
def billing_run_tick(timestamp: int) -> None:
    """Split the tick's billing run into BILLING_RUN_JOBS jobs that any workers may take at once."""
    jobs_defer_many(name=BILLING_RUN_SHARE_TASK,
                    kwargs_list=[{"as_of": timestamp, "share": n} for n in range(settings.BILLING_RUN_JOBS)])


@app.task(name=BILLING_RUN_SHARE_TASK, retry=jobs_retry_strategy())
def billing_run_share(*, as_of: int, share: int) -> str:
    """One worker's part of the billing run due at `as_of` (the tick, seconds since the epoch): `billing
    run` itself, whose SKIP LOCKED claims hand each item to exactly one of the jobs running at once; a job
    retried, requeued after its worker died, or run late finds only what is still due (`share` only
    tells the jobs of one tick apart)."""
    return billing_run(as_of=datetime.fromtimestamp(as_of, tz=UTC)).line()


@app.task(name=emails.INVOICE_FINALIZED_TASK, retry=jobs_retry_strategy())
def invoice_finalized_email(*, invoice_id: int) -> None:
    emails.invoice_finalized_email_send(invoice_id=invoice_id)


@app.task(name=emails.INVOICES_FINALIZED_TASK, retry=jobs_retry_strategy())
def invoices_finalized_email(*, invoice_ids: list[int]) -> None:
    emails.invoices_finalized_email_send(invoice_ids=invoice_ids)


@app.task(name=emails.PAYMENTS_FAILED_TASK, retry=jobs_retry_strategy())
def payments_failed_email(*, failures: list[list[int]]) -> None:
    emails.payments_failed_email_send(failures=failures)


@app.task(name=emails.PAYMENT_SUCCEEDED_TASK, retry=jobs_retry_strategy())
def payment_succeeded_email(*, payment_id: int) -> None:
    emails.payment_succeeded_email_send(payment_id=payment_id)


@app.task(name=emails.PAYMENT_FAILED_TASK, retry=jobs_retry_strategy())
def payment_failed_email(*, invoice_id: int, attempt: int) -> None:
    emails.payment_failed_email_send(invoice_id=invoice_id, attempt=attempt)


@app.task(name=emails.DUNNING_FINAL_NOTICE_TASK, retry=jobs_retry_strategy())
def dunning_final_notice_email(*, invoice_id: int) -> None:
    emails.dunning_final_notice_email_send(invoice_id=invoice_id)
