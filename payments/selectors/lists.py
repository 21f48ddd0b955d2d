"""The invoice and payment querysets every other read starts from, and which payment statuses count
as money collected."""

from django.db.models import QuerySet

from payments.models import CreditPackOrder, Invoice, Payment, PaymentStatus, Refund
from subscriptions.models import Customer


def invoice_list(*, customer: Customer | None = None) -> QuerySet[Invoice]:
    invoices = Invoice.objects.select_related("customer", "subscription__plan")
    return invoices if customer is None else invoices.filter(customer=customer)


def payment_list(*, customer: Customer | None = None) -> QuerySet[Payment]:
    payments = Payment.objects.select_related("customer", "invoice")
    return payments if customer is None else payments.filter(customer=customer)


def refund_list() -> QuerySet[Refund]:
    return Refund.objects.select_related("payment")


# Payments whose money counts towards an invoice (refunds do not reopen a paid invoice).
COLLECTED_PAYMENT_STATUSES = [PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED]


def credit_pack_order_list(*, customer: Customer | None = None) -> QuerySet[CreditPackOrder]:
    orders = CreditPackOrder.objects.select_related("invoice")
    return orders if customer is None else orders.filter(customer=customer)
