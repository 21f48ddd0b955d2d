"""The ledger checks behind `billing verify`: stored invoice figures against their lines and payments."""

from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Coalesce, Greatest, Round

from payments.models import Invoice, InvoiceLine, InvoiceStatus, Payment
from payments.selectors.lists import COLLECTED_PAYMENT_STATUSES


def invoice_total_mismatches() -> list[dict]:
    """Invoices whose stored totals disagree with their lines, lines whose amount is not their quantity
    times unit amount rounded once (half away from zero, as `invoice_line_amount` does), or invoices whose
    amount paid disagrees with their payments (staff 'mark paid' settles without a payment and is
    allowed). The comparisons run in SQL, so only mismatches travel back."""
    mismatches = []
    by_lines = (Invoice.objects.annotate(lines_total=Coalesce(Sum("lines__amount"), Value(0)))
                .filter(~Q(subtotal=F("lines_total")) | ~Q(total=Greatest(F("lines_total"), Value(0)))))
    for invoice in by_lines.iterator(chunk_size=2000):
        mismatches.append({"kind": "invoice_total", "invoice_id": invoice.pk, "number": invoice.number,
                           "stored": invoice.total, "lines": invoice.lines_total})
    due = (Invoice.objects.exclude(status=InvoiceStatus.PAID)
           .exclude(amount_due=Greatest(F("total") - F("amount_paid"), Value(0))))
    for invoice in due.iterator(chunk_size=2000):
        mismatches.append({"kind": "invoice_amount_due", "invoice_id": invoice.pk, "number": invoice.number,
                           "stored": invoice.amount_due, "expected": max(invoice.total - invoice.amount_paid, 0)})
    bad_lines = (InvoiceLine.objects.annotate(exact=Round(F("quantity") * F("unit_amount")))
                 .exclude(amount=F("exact")).select_related("invoice"))
    for line in bad_lines.iterator(chunk_size=2000):
        mismatches.append({"kind": "invoice_line_amount", "invoice_id": line.invoice_id,
                           "number": line.invoice.number, "line_id": line.pk, "stored": line.amount,
                           "expected": int(line.exact)})
    paid = dict(Payment.objects.filter(invoice__isnull=False, status__in=COLLECTED_PAYMENT_STATUSES)
                .values_list("invoice_id").annotate(total=Sum("amount")))
    for invoice in Invoice.objects.filter(Q(amount_paid__gt=0) | Q(pk__in=list(paid))).only("id", "number",
                                                                                          "amount_paid"):
        if invoice.amount_paid != paid.get(invoice.pk, 0):
            mismatches.append({"kind": "invoice_amount_paid", "invoice_id": invoice.pk, "number": invoice.number,
                               "stored": invoice.amount_paid, "payments": paid.get(invoice.pk, 0)})
    return mismatches
