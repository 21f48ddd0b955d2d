"""Reads of invoices and payments, and the ledger checks behind `billing verify`."""

from django.db.models import Q, QuerySet, Sum

from payments.models import Invoice, InvoiceStatus, Payment, PaymentStatus
from subscriptions.models import Customer


def invoice_list(*, customer: Customer | None = None) -> QuerySet[Invoice]:
    invoices = Invoice.objects.select_related("customer", "subscription__plan")
    return invoices if customer is None else invoices.filter(customer=customer)


def payment_list(*, customer: Customer | None = None) -> QuerySet[Payment]:
    payments = Payment.objects.select_related("customer", "invoice")
    return payments if customer is None else payments.filter(customer=customer)


# Payments whose money counts towards an invoice (refunds do not reopen a paid invoice).
_COLLECTED = [PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED]


def invoice_total_mismatches() -> list[dict]:
    """Invoices whose stored totals disagree with their lines, or whose amount paid disagrees with
    their payments (staff 'mark paid' settles without a payment and is allowed)."""
    mismatches = []
    invoices = Invoice.objects.annotate(
        lines_total=Sum("lines__amount"),
    ).iterator(chunk_size=2000)
    for invoice in invoices:
        lines_total = invoice.lines_total or 0
        if invoice.subtotal != lines_total or invoice.total != max(lines_total, 0):
            mismatches.append({"kind": "invoice_total", "invoice_id": invoice.pk, "number": invoice.number,
                               "stored": invoice.total, "lines": lines_total})
        if invoice.amount_due != max(invoice.total - invoice.amount_paid, 0) and invoice.status != InvoiceStatus.PAID:
            mismatches.append({"kind": "invoice_amount_due", "invoice_id": invoice.pk, "number": invoice.number,
                               "stored": invoice.amount_due, "expected": invoice.total - invoice.amount_paid})
    paid = dict(Payment.objects.filter(invoice__isnull=False, status__in=_COLLECTED)
                .values_list("invoice_id").annotate(total=Sum("amount")))
    for invoice in Invoice.objects.filter(Q(amount_paid__gt=0) | Q(pk__in=list(paid))).only("id", "number",
                                                                                          "amount_paid"):
        if invoice.amount_paid != paid.get(invoice.pk, 0):
            mismatches.append({"kind": "invoice_amount_paid", "invoice_id": invoice.pk, "number": invoice.number,
                               "stored": invoice.amount_paid, "payments": paid.get(invoice.pk, 0)})
    return mismatches
