"""The `credits` live topic: every ledger entry as it commits, with the balance after it (the newest
entry's `balance_after` is the customer's balance)."""

from functools import partial

from django.db import transaction

from credits.models import CreditLedgerEntry, LedgerKind
from modules.topics import Topic, TopicQuery, topic_filters_apply, topic_publish

CREDITS = "credits"


# The kinds' lazy labels, translated when read: `LedgerKind.values` and `LedgerKind(kind)` rebuilt the choices
# on every call (a thirtieth of a debit request's CPU).
_KIND_LABELS = {kind.value: kind.label for kind in LedgerKind}


def _kind_label(kind: str) -> str:
    label = _KIND_LABELS.get(kind)
    return str(label) if label is not None else kind


def credit_entry_live_data(entry: CreditLedgerEntry) -> dict:
    """The one shape of a ledger entry on the WebSocket, in snapshots and events alike."""
    # LedgerKind's label, as get_kind_display() gives it, without that method's hashing of every choice on
    # each call (a twentieth of a debit request's CPU).
    return {
        "id": entry.pk, "customer_id": entry.customer_id, "kind": entry.kind, "kind_label": _kind_label(entry.kind),
        # Credits are whole units; `balance_after` is the customer's balance once this entry applied.
        "amount": entry.amount, "balance_after": entry.balance_after, "grant_id": entry.grant_id,
        "reason": entry.reason, "created_at": entry.created_at.isoformat(),
    }


def credit_entry_created(*, entry: CreditLedgerEntry) -> None:
    """Announce a ledger entry to its customer and staff once the transaction commits. Entries are never
    changed after they are written, so the one in hand is what commits: no read-back on the debit's hot path."""
    found = (credit_entry_live_data(entry), {"customer": entry.customer_id, "kind": entry.kind})
    transaction.on_commit(partial(topic_publish, topic=CREDITS, kind="created", read=lambda: found))


def credits_snapshot(query: TopicQuery) -> tuple[list[dict], int]:
    entries = topic_filters_apply(CreditLedgerEntry.objects.all(), query=query,
                                  fields={"customer": "customer_id", "kind": "kind"}).order_by("-id")
    return [credit_entry_live_data(e) for e in entries[:query.limit]], entries.count()


TOPICS = [
    Topic(name=CREDITS, module="credits", view_permission="credits.view_creditledgerentry",
          filters={"kind": tuple(LedgerKind.values)}, snapshot=credits_snapshot),
]
