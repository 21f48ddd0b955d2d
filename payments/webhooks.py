"""Outbound webhook events about invoices and payments, written by the status move that causes them (same
transaction; docs/webhooks-outbound.md). Each status function (`invoice_transition`, `payment_transition`,
`payment_refund_apply`) and the billing run's bulk issue call these, so every path is covered once."""

from outbound_webhooks.models import EventType
from outbound_webhooks.selectors import webhook_event_types_wanted
from outbound_webhooks.services import WebhookEventInput, webhook_event_emit, webhook_events_emit_many
from payments.models import Invoice, InvoiceStatus, Payment, PaymentStatus

_INVOICE_FIELDS = ("id", "number", "customer_id", "subscription_id", "status", "billing_reason", "currency",
                   "subtotal", "total", "amount_paid", "amount_due", "issued_at", "due_date", "paid_at", "voided_at",
                   "period_start", "period_end")
_PAYMENT_FIELDS = ("id", "customer_id", "invoice_id", "method", "status", "currency", "amount", "amount_refunded",
                   "failure_code", "failure_reason", "succeeded_at")


def _data(values: dict, fields: tuple[str, ...]) -> dict:
    # Money stays integer minor units with its currency, as in the API.
    return {name.removesuffix("_id"): values[name] for name in fields}


def _invoice_event_type(*, from_status: str, to_status: str) -> str | None:
    if to_status == InvoiceStatus.OPEN and from_status == InvoiceStatus.DRAFT:
        return EventType.INVOICE_FINALIZED
    return {InvoiceStatus.PAID: EventType.INVOICE_PAID, InvoiceStatus.VOID: EventType.INVOICE_VOIDED}.get(to_status)


def invoice_webhook_emit(*, invoice: Invoice, from_status: str, to_status: str) -> None:
    event_type = _invoice_event_type(from_status=from_status, to_status=to_status)
    if event_type:
        values = {name: getattr(invoice, name) for name in _INVOICE_FIELDS}
        webhook_event_emit(event_type=event_type, object_type="invoice", object_id=invoice.pk,
                           data=_data(values, _INVOICE_FIELDS))


def invoices_issued_webhook_emit(*, invoice_ids: list[int]) -> None:
    """Invoices the billing run issued in bulk: `invoice.finalized` each, and `invoice.paid` for those
    settled at once (nothing due); read once, and only when some endpoint wants them."""
    wanted = webhook_event_types_wanted() & {EventType.INVOICE_FINALIZED, EventType.INVOICE_PAID}
    if not wanted or not invoice_ids:
        return
    events = []
    for values in Invoice.objects.filter(pk__in=invoice_ids).order_by("pk").values(*_INVOICE_FIELDS):
        data = _data(values, _INVOICE_FIELDS)
        if EventType.INVOICE_FINALIZED in wanted:
            events.append(WebhookEventInput(EventType.INVOICE_FINALIZED, "invoice", values["id"],
                                            {**data, "status": InvoiceStatus.OPEN, "paid_at": None}))
        if EventType.INVOICE_PAID in wanted and values["status"] == InvoiceStatus.PAID:
            events.append(WebhookEventInput(EventType.INVOICE_PAID, "invoice", values["id"], data))
    webhook_events_emit_many(events=events)


def payment_webhook_emit(*, payment: Payment, to_status: str) -> None:
    event_type = {PaymentStatus.SUCCEEDED: EventType.PAYMENT_SUCCEEDED,
                  PaymentStatus.FAILED: EventType.PAYMENT_FAILED}.get(to_status)
    if event_type:
        values = {name: getattr(payment, name) for name in _PAYMENT_FIELDS}
        webhook_event_emit(event_type=event_type, object_type="payment", object_id=payment.pk,
                           data=_data(values, _PAYMENT_FIELDS))


def payment_refunded_webhook_emit(*, payment: Payment, amount: int) -> None:
    """Money went back (`payment_refund_apply`, every rail): `payment.refunded` with this refund's amount."""
    values = {name: getattr(payment, name) for name in _PAYMENT_FIELDS}
    webhook_event_emit(event_type=EventType.PAYMENT_REFUNDED, object_type="payment", object_id=payment.pk,
                       data={**_data(values, _PAYMENT_FIELDS), "refunded_now": amount})
