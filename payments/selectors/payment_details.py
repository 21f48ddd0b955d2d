"""What a payment paid for (its invoice with the lines, the credit pack orders that invoice billed) and the
credits it awarded (the ledger entries its settle caused, PaymentCreditEntry): the API's payment detail
and the admin's payment page read them from here."""

from django.db.models import Prefetch, QuerySet

from payments.models import CreditPackOrder, Payment, PaymentCreditEntry
from payments.selectors.lists import payment_list


def payment_detail_list() -> QuerySet[Payment]:
    """Payments with everything their detail shows, in a constant number of queries."""
    return payment_list().prefetch_related(
        "invoice__lines",
        Prefetch("invoice__credit_pack_orders", queryset=CreditPackOrder.objects.order_by("pk")),
        Prefetch("credit_entries", queryset=PaymentCreditEntry.objects.select_related("entry").order_by("pk")),
    )


def payment_credit_pack_orders(*, payment: Payment) -> list[CreditPackOrder]:
    """The credit packs ordered on account that the payment's invoice billed (none without an invoice)."""
    return list(payment.invoice.credit_pack_orders.all()) if payment.invoice_id else []
