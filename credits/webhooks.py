"""Outbound webhook events about credits, written by the ledger entry that causes them (same transaction;
docs/webhooks-outbound.md): `credits.granted` for every grant (staff, API, packs, plan refills) and
`credits.low` when a debit takes the balance below CREDITS_LOW_THRESHOLD (the moment the email goes)."""

from django.conf import settings

from credits.models import CreditLedgerEntry
from outbound_webhooks.models import EventType
from outbound_webhooks.selectors import webhook_event_types_wanted
from outbound_webhooks.services import WebhookEventInput, webhook_event_emit, webhook_events_emit_many


def _data(*, customer_id: int, amount: int, balance_after: int, entry_id: int, reason: str) -> dict:
    # Credits are whole units (no currency): `amount` is what the entry added or took.
    return {"customer": customer_id, "ledger_entry": entry_id, "amount": amount, "balance_after": balance_after,
            "reason": reason}


def credit_granted_webhook_emit(*, entry: CreditLedgerEntry) -> None:
    webhook_event_emit(event_type=EventType.CREDITS_GRANTED, object_type="customer_credits",
                       object_id=entry.customer_id,
                       data=_data(customer_id=entry.customer_id, amount=entry.amount, balance_after=entry.balance_after,
                                  entry_id=entry.pk, reason=entry.reason))


def credits_granted_webhook_emit_many(*, customer_ids: list[int], idempotency_keys: list[str]) -> None:
    """Grants written in bulk (plan refills): their ledger entries are read once, only when wanted."""
    if EventType.CREDITS_GRANTED not in webhook_event_types_wanted():
        return
    entries = (CreditLedgerEntry.objects.filter(customer_id__in=customer_ids, idempotency_key__in=idempotency_keys)
               .order_by("pk").values_list("pk", "customer_id", "amount", "balance_after", "reason"))
    webhook_events_emit_many(events=[
        WebhookEventInput(EventType.CREDITS_GRANTED, "customer_credits", customer_id,
                          _data(customer_id=customer_id, amount=amount, balance_after=balance_after, entry_id=pk,
                                reason=reason))
        for pk, customer_id, amount, balance_after, reason in entries])


def credits_low_webhook_emit(*, entry: CreditLedgerEntry) -> None:
    webhook_event_emit(event_type=EventType.CREDITS_LOW, object_type="customer_credits", object_id=entry.customer_id,
                       data={**_data(customer_id=entry.customer_id, amount=entry.amount,
                                     balance_after=entry.balance_after, entry_id=entry.pk, reason=entry.reason),
                             "threshold": settings.CREDITS_LOW_THRESHOLD})
