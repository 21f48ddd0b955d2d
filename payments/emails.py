"""The customer emails about invoices and payments: what each says (context) and to whom.

Each function runs in a job after the change that caused it committed, reads the rows as they are
now, and hands the email to `notifications.services.email_send_once` (at most once per event and
recipient). The task names are what services defer (`core.jobs.job_defer`)."""

from collections.abc import Callable

from django.conf import settings
from django.urls import reverse

from core.money import format_money_lazy as format_money
from notifications.models import EmailLog
from notifications.services import EmailSpec, email_send_once
from payments.models import Invoice, Payment, PaymentStatus

INVOICE_FINALIZED_TASK = "payments.invoice_finalized_email"
PAYMENT_SUCCEEDED_TASK = "payments.payment_succeeded_email"
PAYMENT_FAILED_TASK = "payments.payment_failed_email"
DUNNING_FINAL_NOTICE_TASK = "payments.dunning_final_notice_email"
# The billing run's batches defer one job per batch for these (not one per invoice): a job is a row, an
# event row and two notifications in PostgreSQL, a third of the run's database time at 2,000 invoices per
# batch (docs/decisions.md). The single-invoice tasks above stay for invoice_finalize and for the jobs
# queued before this change.
INVOICES_FINALIZED_TASK = "payments.invoices_finalized_email"
PAYMENTS_FAILED_TASK = "payments.payments_failed_email"


def invoice_print_url(*, invoice: Invoice) -> str:
    return settings.SITE_URL + reverse("invoice-print", args=[invoice.pk])


def _invoice(invoice_id: int) -> Invoice:
    return Invoice.objects.select_related("customer", "subscription__plan").get(pk=invoice_id)


def _invoice_context(invoice: Invoice) -> dict:
    currency = invoice.currency
    return {"invoice": invoice, "customer": invoice.customer, "subscription": invoice.subscription,
            "total": format_money(invoice.total, currency), "amount_due": format_money(invoice.amount_due, currency),
            "print_url": invoice_print_url(invoice=invoice)}


def invoice_finalized_email_send(*, invoice_id: int) -> EmailLog:
    """The invoice inline (lines and totals) with a link to its printable page."""
    invoice = _invoice(invoice_id)
    lines = [{"line": line, "amount": format_money(line.amount, invoice.currency)}
             for line in invoice.lines.order_by("id")]
    return email_send_once(spec=EmailSpec(
        language=invoice.customer.preferred_language,
        event_key=f"invoice_finalized:{invoice.pk}", recipient=invoice.customer.email, kind="invoice_finalized",
        context={**_invoice_context(invoice), "lines": lines}))


def invoices_finalized_email_send(*, invoice_ids: list[int]) -> None:
    """`invoice_finalized_email_send` for each invoice of a billing batch; see `_each_send`."""
    _each_send(send=invoice_finalized_email_send, kwargs_list=[{"invoice_id": pk} for pk in invoice_ids])


def payments_failed_email_send(*, failures: list[list[int]]) -> None:
    """`payment_failed_email_send` for each [invoice id, failed attempt] of a billing batch; see `_each_send`."""
    _each_send(send=payment_failed_email_send,
               kwargs_list=[{"invoice_id": pk, "attempt": attempt} for pk, attempt in failures])


def _each_send(*, send: Callable[..., EmailLog], kwargs_list: list[dict]) -> None:
    """Send every email of a batch job even if one fails (one bad address must not hold back the
    others), then raise the first failure so the job retries: `email_send_once` skips those already sent."""
    first_failure = None
    for kwargs in kwargs_list:
        try:
            send(**kwargs)
        except Exception as exc:  # any failure: the others still go, the job retries this one
            first_failure = first_failure or exc
    if first_failure is not None:
        raise first_failure


def payment_succeeded_email_send(*, payment_id: int) -> EmailLog:
    """The receipt."""
    payment = Payment.objects.select_related("customer", "invoice").get(pk=payment_id)
    invoice = payment.invoice
    return email_send_once(spec=EmailSpec(
        language=payment.customer.preferred_language,
        event_key=f"payment_succeeded:{payment.pk}", recipient=payment.customer.email, kind="payment_succeeded",
        context={"payment": payment, "customer": payment.customer, "invoice": invoice,
                 "amount": format_money(payment.amount, payment.currency),
                 "print_url": invoice_print_url(invoice=invoice) if invoice else ""}))


def payment_failed_email_send(*, invoice_id: int, attempt: int) -> EmailLog:
    """Collection attempt `attempt` failed: the provider's reason and the date of the next try."""
    invoice = _invoice(invoice_id)
    failed = invoice.payments.filter(status=PaymentStatus.FAILED).order_by("-created_at", "-id").first()
    return email_send_once(spec=EmailSpec(
        language=invoice.customer.preferred_language,
        event_key=f"payment_failed:{invoice.pk}:{attempt}", recipient=invoice.customer.email, kind="payment_failed",
        context={**_invoice_context(invoice), "reason": failed.failure_reason if failed else ""}))


def dunning_final_notice_email_send(*, invoice_id: int) -> EmailLog:
    """The last collection attempt failed: the invoice is written off and its subscription canceled."""
    invoice = _invoice(invoice_id)
    return email_send_once(spec=EmailSpec(
        language=invoice.customer.preferred_language,
        event_key=f"dunning_final:{invoice.pk}", recipient=invoice.customer.email, kind="dunning_final_notice",
        context=_invoice_context(invoice)))
