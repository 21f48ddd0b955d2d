"""The payments app's live topics: `payments` (events sent by payments.live.broadcast) and `invoices`."""

from functools import partial

from django.db import transaction

from modules.topics import Topic, TopicQuery, topic_filters_apply, topic_publish
from payments.live.broadcast import payment_event_data
from payments.models import Invoice, InvoiceStatus, PaymentMethod, PaymentStatus
from payments.selectors import invoice_list, payment_list

INVOICES = "invoices"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def invoice_live_data(invoice: Invoice) -> dict:
    """The one shape of an invoice on the WebSocket, in snapshots and events alike."""
    return {
        "id": invoice.pk, "number": invoice.number, "customer_id": invoice.customer_id,
        "subscription_id": invoice.subscription_id, "status": invoice.status,
        "status_label": invoice.get_status_display(), "billing_reason": invoice.billing_reason,
        # Integer minor units of `currency`, as everywhere else in the app.
        "currency": invoice.currency, "subtotal": invoice.subtotal, "total": invoice.total,
        "amount_paid": invoice.amount_paid, "amount_due": invoice.amount_due,
        "period_start": _iso(invoice.period_start), "period_end": _iso(invoice.period_end),
        "due_date": _iso(invoice.due_date), "issued_at": _iso(invoice.issued_at), "paid_at": _iso(invoice.paid_at),
        "created_at": _iso(invoice.created_at), "updated_at": _iso(invoice.updated_at),
    }


def _invoice_read(invoice_id: int) -> tuple[dict, dict] | None:
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        return None
    return invoice_live_data(invoice), {"customer": invoice.customer_id, "status": invoice.status,
                                        "subscription": invoice.subscription_id}


def invoice_changed(*, invoice_id: int, kind: str) -> None:
    """Announce an invoice's committed state to its customer and staff once the transaction commits."""
    transaction.on_commit(partial(topic_publish, topic=INVOICES, kind=kind, read=partial(_invoice_read, invoice_id)))


def invoices_snapshot(query: TopicQuery) -> tuple[list[dict], int]:
    invoices = topic_filters_apply(invoice_list(), query=query, fields={
        "customer": "customer_id", "status": "status", "subscription": "subscription_id"}).order_by("-id")
    return [invoice_live_data(i) for i in invoices[:query.limit]], invoices.count()


def payments_snapshot(query: TopicQuery) -> tuple[list[dict], int]:
    payments = topic_filters_apply(payment_list(), query=query, fields={
        "customer": "customer_id", "invoice": "invoice_id", "status": "status", "method": "method"})
    return [payment_event_data(p) for p in payments[:query.limit]], payments.count()


TOPICS = [
    # Open to every customer for its own payments (no plan feature): /ws/payments/ clients had it so.
    Topic(name="payments", module="invoicing", view_permission="payments.view_payment", customer_feature=None,
          filters={"status": tuple(PaymentStatus.values), "method": tuple(PaymentMethod.values), "invoice": int},
          snapshot=payments_snapshot),
    Topic(name=INVOICES, module="invoicing", view_permission="payments.view_invoice",
          filters={"status": tuple(InvoiceStatus.values), "subscription": int}, snapshot=invoices_snapshot),
]
