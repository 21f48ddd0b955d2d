"""Emitting events: called by the apps inside the transaction that makes the change.

An event is written only when some enabled endpoint subscribes to its type; it gets the object's next
sequence number, one delivery row per subscribed endpoint and one delivery job each, all in the caller's
transaction: a rollback leaves no event, no delivery and no job; a commit leaves all three.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.jobs import jobs_are_suppressed, jobs_defer_many
from outbound_webhooks.models import WebhookDelivery, WebhookEvent, WebhookObjectSequence
from outbound_webhooks.selectors import webhook_endpoints_by_event_type

WEBHOOK_DELIVER_TASK = "outbound_webhooks.webhook_deliver"
# Objects whose sequence numbers one statement reserves (three parameters each, far below PostgreSQL's limit).
_SEQUENCE_CHUNK = 1000


@dataclass(frozen=True)
class WebhookEventInput:
    """What happened to which object; `data` is the object as receivers should see it (JSON-ready)."""

    event_type: str
    object_type: str
    object_id: int
    data: dict = field(default_factory=dict)


def webhook_event_emit(*, event_type: str, object_type: str, object_id: int, data: dict) -> None:
    webhook_events_emit_many(events=[WebhookEventInput(event_type, object_type, object_id, data)])


def webhook_events_emit_many(*, events: Sequence[WebhookEventInput]) -> int:
    """Write the events some endpoint wants, with their deliveries and jobs; the number of deliveries."""
    if not events or jobs_are_suppressed():  # history being seeded happened in the past: nobody is told now
        return 0
    subscribers = webhook_endpoints_by_event_type()
    wanted = [e for e in events if subscribers.get(e.event_type)]
    if not wanted:
        return 0
    with transaction.atomic():
        sequences = _sequences_reserve(keys=[(e.object_type, e.object_id) for e in wanted])
        rows = WebhookEvent.objects.bulk_create([
            WebhookEvent(event_type=e.event_type, object_type=e.object_type, object_id=e.object_id,
                         sequence=sequences[(e.object_type, e.object_id)].pop(0), data=e.data) for e in wanted])
        retry_until = timezone.now() + settings.OUTBOUND_WEBHOOKS_RETRY_WINDOW
        deliveries = WebhookDelivery.objects.bulk_create([
            WebhookDelivery(event=row, endpoint_id=endpoint_id, retry_until=retry_until)
            for row in rows for endpoint_id in subscribers[row.event_type]])
        jobs_defer_many(name=WEBHOOK_DELIVER_TASK, kwargs_list=[{"delivery_id": d.pk} for d in deliveries])
    return len(deliveries)


def _sequences_reserve(*, keys: list[tuple[str, int]]) -> dict[tuple[str, int], list[int]]:
    """Bump each object's counter by its number of events in one upsert per chunk (sorted, so two
    transactions lock counter rows in the same order) and hand out the numbers in event order."""
    counts = sorted(Counter(keys).items())
    table = WebhookObjectSequence._meta.db_table
    reserved: dict[tuple[str, int], list[int]] = {}
    for start in range(0, len(counts), _SEQUENCE_CHUNK):
        chunk = counts[start:start + _SEQUENCE_CHUNK]
        values = ", ".join(["(%s, %s, %s)"] * len(chunk))
        params = [p for (object_type, object_id), n in chunk for p in (object_type, object_id, n)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (object_type, object_id, last_sequence) VALUES {values} "
                f"ON CONFLICT (object_type, object_id) DO UPDATE "
                f"SET last_sequence = {table}.last_sequence + excluded.last_sequence "
                f"RETURNING object_type, object_id, last_sequence", params)
            last = {(t, i): n for t, i, n in cursor.fetchall()}
        for key, n in chunk:
            reserved[key] = list(range(last[key] - n + 1, last[key] + 1))
    return reserved
