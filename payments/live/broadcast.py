"""Live payment events: what is broadcast to WebSocket clients when a payment changes, and to whom.

`payments.services` schedules `payment_broadcast` with `transaction.on_commit`, so clients only hear
about committed changes. The event leaves through the process's live sender (modules/topics_sender.py),
as every other topic's do: the request queues it and returns, one thread per process sends it, so a
slow or unreachable Redis never holds up the request that recorded the payment. Every connected consumer
of a group receives the same pre-encoded text and only compares a few fields against its filters:
delivering an event costs no query and no JSON encoding per client.
"""

import json
import logging

from modules.topics import LIVE_EVENT, group_customer, group_staff
from modules.topics_sender import LiveEvent, live_event_publish
from payments.models import Payment
from payments.selectors import payment_live_get

logger = logging.getLogger(__name__)

TOPIC = "payments"
# Staff connections share one group; each customer's connections share another (modules.topics names).
STAFF_GROUP = group_staff(TOPIC)
EVENT_TYPE = "payment.updated"
# The channel-layer message type of every topic's events; consumers route it by its "topic".
LAYER_MESSAGE_TYPE = LIVE_EVENT


def customer_group(customer_id: int) -> str:
    return group_customer(TOPIC, customer_id)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def payment_event_data(payment: Payment) -> dict:
    """The one shape of a payment on the WebSocket, in snapshots and in events alike."""
    return {
        "id": payment.pk,
        "customer_id": payment.customer_id,
        "invoice_id": payment.invoice_id,
        "invoice_number": payment.invoice.number if payment.invoice_id else None,
        # Integer minor units with their currency, as everywhere else in the app.
        "amount": payment.amount,
        "amount_refunded": payment.amount_refunded,
        "currency": payment.currency,
        "method": payment.method,
        "status": payment.status,
        "status_label": payment.get_status_display(),
        "failure_code": payment.failure_code,
        "failure_reason": payment.failure_reason,
        "created_at": _iso(payment.created_at),
        "updated_at": _iso(payment.updated_at),
        "succeeded_at": _iso(payment.succeeded_at),
    }


def payment_event_message(*, payment: Payment, previous_status: str | None) -> dict:
    """A channel-layer message: the client's text, encoded once, and the fields filters look at."""
    text = json.dumps({"type": EVENT_TYPE, "data": payment_event_data(payment), "previous_status": previous_status})
    return {
        "type": LAYER_MESSAGE_TYPE,
        "topic": TOPIC,
        "text": text,
        "match": {"customer": payment.customer_id, "invoice": payment.invoice_id, "status": payment.status,
                  "method": payment.method},
    }


def payment_broadcast(*, payment_id: int, previous_status: str | None) -> None:
    """Tell the payment's customer and staff its committed state. Run from `transaction.on_commit`.

    `previous_status` is None when the payment was just created. The payload is read after the commit,
    so it is what the database holds, even when one transaction moved the payment more than once.
    Reading it is the only work done in the request; the send is queued for the process's sender, whose
    thread drops events while the channel-layer breaker is open (Redis down, logged once per outage) and
    counts what it drops. A failure here must not turn a successful payment into a 500 for the user, so
    it is logged and swallowed: the change itself is already saved.
    """
    try:
        payment = payment_live_get(payment_id=payment_id)
        message = payment_event_message(payment=payment, previous_status=previous_status)
    except Exception:
        logger.exception("Reading the live event of payment %s failed; the change is saved but clients missed it",
                         payment_id)
        return
    live_event_publish(LiveEvent(groups=(customer_group(payment.customer_id), STAFF_GROUP), message=message))
