"""The emails about invoices and payments: deferred by the change that causes them (never for rolled-back
work), rendered by the job, sent once per event and recipient."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction

from core.audit import Actor
from core.l10n import format_date
from core.tests.jobs_support import jobs_queued, jobs_run_queued
from notifications.models import EmailLog
from payments import emails
from payments.billing.run import billing_run
from payments.emails import (
    DUNNING_FINAL_NOTICE_TASK,
    INVOICE_FINALIZED_TASK,
    INVOICES_FINALIZED_TASK,
    PAYMENT_SUCCEEDED_TASK,
    PAYMENTS_FAILED_TASK,
)
from payments.models import Invoice, InvoiceLineKind, PaymentMethod
from payments.providers.manual.services import payment_record_manual
from payments.services import LineSpec, invoice_create, invoice_finalize
from payments.tests.conftest import make_due_subscription
from subscriptions.emails import SUBSCRIPTION_CANCELED_TASK
from subscriptions.tests.factories import CustomerFactory, PlanFactory

ACTOR = Actor.system("test")
FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def _draft(customer, amount: int = 2500) -> Invoice:
    return invoice_create(customer=customer, lines=[
        LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="Setup fee", unit_amount=Decimal(amount))])


def test_a_finalized_invoice_is_emailed_inline_with_a_link_to_its_printable_page(settings):
    settings.SITE_URL = "https://billing.example.com"
    customer = CustomerFactory(user=None, name="Ada", email="ada@example.com", currency="USD")
    invoice = invoice_finalize(invoice=_draft(customer), actor=ACTOR)
    assert jobs_run_queued(task_name=INVOICE_FINALIZED_TASK) == 1
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == f"Invoice {invoice.number} for 25.00 USD"
    assert "Setup fee: 25.00 USD" in message.body
    assert f"https://billing.example.com/invoices/{invoice.pk}/print/" in message.alternatives[0][0]
    assert EmailLog.objects.get().event_key == f"invoice_finalized:{invoice.pk}"


def test_a_finalization_rolled_back_queues_no_email():
    draft = _draft(CustomerFactory(user=None))
    with pytest.raises(RuntimeError), transaction.atomic():
        invoice_finalize(invoice=draft, actor=ACTOR)
        raise RuntimeError("the caller failed after finalizing")
    assert jobs_queued(task_name=INVOICE_FINALIZED_TASK) == []


def test_the_billing_run_queues_one_email_job_per_batch_that_emails_each_invoice_it_issues():
    plan = PlanFactory(amount=1500)
    for _ in range(3):
        make_due_subscription(plan=plan)
    billing_run(as_of=FEB_28)
    [job] = jobs_queued(task_name=INVOICES_FINALIZED_TASK)
    assert sorted(job.args["invoice_ids"]) == sorted(Invoice.objects.values_list("pk", flat=True))
    assert len(job.args["invoice_ids"]) == 3
    assert jobs_run_queued(task_name=INVOICES_FINALIZED_TASK) == 1
    assert len(mail.outbox) == 3
    assert EmailLog.objects.filter(kind="invoice_finalized").count() == 3


def test_a_batch_email_job_sends_the_others_when_one_fails_and_its_retry_sends_only_that_one(monkeypatch):
    customers = [CustomerFactory(user=None, email=f"c{n}@example.com") for n in range(3)]
    invoices = [invoice_finalize(invoice=_draft(customer), actor=ACTOR) for customer in customers]
    real_send = emails.invoice_finalized_email_send

    def send_failing_for_the_second(*, invoice_id):
        if invoice_id == invoices[1].pk:
            raise ConnectionError("the mail server hung up")
        return real_send(invoice_id=invoice_id)

    monkeypatch.setattr(emails, "invoice_finalized_email_send", send_failing_for_the_second)
    with pytest.raises(ConnectionError):
        emails.invoices_finalized_email_send(invoice_ids=[i.pk for i in invoices])
    assert sorted(m.to[0] for m in mail.outbox) == ["c0@example.com", "c2@example.com"]
    monkeypatch.setattr(emails, "invoice_finalized_email_send", real_send)
    emails.invoices_finalized_email_send(invoice_ids=[i.pk for i in invoices])  # the job's retry
    assert sorted(m.to[0] for m in mail.outbox) == ["c0@example.com", "c1@example.com", "c2@example.com"]


def test_a_payment_that_succeeds_sends_a_receipt_once():
    customer = CustomerFactory(user=None, email="ada@example.com", currency="USD")
    invoice = invoice_finalize(invoice=_draft(customer), actor=ACTOR)
    payment = payment_record_manual(customer=customer, amount=2500, method=PaymentMethod.BANK_TRANSFER, actor=ACTOR,
                                    invoice=invoice)
    [job] = jobs_queued(task_name=PAYMENT_SUCCEEDED_TASK)
    assert job.args == {"payment_id": payment.pk}
    jobs_run_queued(task_name=PAYMENT_SUCCEEDED_TASK)
    [receipt] = mail.outbox
    assert receipt.subject == f"Receipt: 25.00 USD received for invoice {invoice.number}"


def test_failed_collection_tells_the_reason_and_next_retry_then_sends_the_final_notice(settings, collect_outcomes):
    settings.BILLING_DUNNING_RETRY_DAYS = [1, 3]
    script, _ = collect_outcomes
    script["outcome"] = "failed"
    sub = make_due_subscription(customer=CustomerFactory(user=None, email="ada@example.com"))
    billing_run(as_of=FEB_28)  # renewed, first attempt failed
    invoice = Invoice.objects.get(subscription=sub)
    assert [j.args for j in jobs_queued(task_name=PAYMENTS_FAILED_TASK)] == [{"failures": [[invoice.pk, 1]]}]
    jobs_run_queued(task_name=PAYMENTS_FAILED_TASK)
    retry_on = format_date(FEB_28 + timedelta(days=1))
    assert f"We will try again on {retry_on}" in mail.outbox[-1].body

    billing_run(as_of=FEB_28 + timedelta(days=1))  # second failure: retried on day 3
    billing_run(as_of=FEB_28 + timedelta(days=3))  # third: written off, canceled
    assert [j.args["failures"] for j in jobs_queued(task_name=PAYMENTS_FAILED_TASK)] == [[[invoice.pk, 2]]]
    assert [j.args for j in jobs_queued(task_name=DUNNING_FINAL_NOTICE_TASK)] == [{"invoice_id": invoice.pk}]
    assert [j.args for j in jobs_queued(task_name=SUBSCRIPTION_CANCELED_TASK)] == [{"subscription_id": sub.pk}]
    jobs_run_queued(task_name=DUNNING_FINAL_NOTICE_TASK)
    assert mail.outbox[-1].subject == f"Final notice: invoice {invoice.number} could not be collected"
