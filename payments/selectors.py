"""Reads of invoices and payments, and the ledger checks behind `billing verify`."""

from dataclasses import dataclass

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


# ------------------------------------------------------------------------------- live payment feed


@dataclass(frozen=True)
class LiveAudience:
    """Whose payments one WebSocket connection may see, decided once when it authenticates."""

    is_staff: bool
    # The customer a non-staff user bills as; None for staff, who see every customer.
    customer_id: int | None = None


@dataclass(frozen=True)
class PaymentLiveFilters:
    """What a live subscription asked for. The snapshot applies it in SQL; every event is matched in
    memory against the few fields the broadcast carries, so delivering an event costs no query."""

    customer_id: int | None = None
    invoice_id: int | None = None
    # Empty means any.
    statuses: frozenset[str] = frozenset()
    methods: frozenset[str] = frozenset()

    def apply(self, payments: QuerySet[Payment]) -> QuerySet[Payment]:
        if self.customer_id is not None:
            payments = payments.filter(customer_id=self.customer_id)
        if self.invoice_id is not None:
            payments = payments.filter(invoice_id=self.invoice_id)
        if self.statuses:
            payments = payments.filter(status__in=self.statuses)
        if self.methods:
            payments = payments.filter(method__in=self.methods)
        return payments

    def matches(self, fields: dict) -> bool:
        """`fields` is the "match" part of a broadcast: customer, invoice, status and method."""
        return ((self.customer_id is None or fields["customer"] == self.customer_id)
                and (self.invoice_id is None or fields["invoice"] == self.invoice_id)
                and (not self.statuses or fields["status"] in self.statuses)
                and (not self.methods or fields["method"] in self.methods))


def payment_live_audience(*, user) -> LiveAudience | None:
    """Staff allowed to view payments see all of them; a customer's user sees its own; anyone else
    nothing (None)."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff and user.has_perm("payments.view_payment"):
        return LiveAudience(is_staff=True)
    customer_id = Customer.objects.filter(user=user).values_list("pk", flat=True).first()
    if customer_id is None:
        return None
    return LiveAudience(is_staff=False, customer_id=customer_id)


def payment_live_snapshot(*, audience: LiveAudience, filters: PaymentLiveFilters,
                          limit: int) -> tuple[list[Payment], int]:
    """The newest `limit` payments matching `filters` that `audience` may see, and how many match."""
    payments = filters.apply(payment_list())
    if not audience.is_staff:
        payments = payments.filter(customer_id=audience.customer_id)
    return list(payments[:limit]), payments.count()


def payment_live_get(*, payment_id: int) -> Payment:
    return payment_list().get(pk=payment_id)
