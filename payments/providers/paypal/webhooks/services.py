"""The PayPal event inbox: verify, store once, process once, replay (the same protocol as Stripe's,
docs/stripe.md, on the shared ProviderEvent table).

- A delivery is verified (verification.py) before anything is stored; a rejected one is logged.
- It is stored under its unique (provider, event id) by the shared inbox (payments/providers/inbox.py),
  which defers its apply job in the same transaction; a duplicate delivery fails on the unique index and
  answers 200 without doing anything. A worker applies it (`paypal_event_apply`).
- It is processed in its own transaction with the event row locked; the handler runs in a savepoint, so
  a failing handler leaves no half-applied writes and the event is marked failed with the error.
- What a handler needs to ask PayPal (PREPARERS: capturing an approved order) is asked before that
  transaction opens: no row is locked while PayPal answers.
"""

import logging
import traceback
from collections.abc import Mapping
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.audit import Actor
from core.exceptions import WebhookRejected
from payments.models import ProviderEventStatus
from payments.providers.inbox import StoredEvent, VerifiedEvent, provider_event_store
from payments.providers.paypal.models import PAYPAL, PayPalEvent
from payments.providers.paypal.payloads import parse_time
from payments.providers.paypal.webhooks.handlers import HANDLERS, PREPARERS
from payments.providers.paypal.webhooks.verification import webhook_event_verify

logger = logging.getLogger(__name__)

WEBHOOK_ACTOR = Actor.system("paypal-webhook")
S = ProviderEventStatus


def paypal_event_receive(*, body: bytes, headers: Mapping[str, str]) -> StoredEvent:
    """Verify and store one delivery, deferring its apply job (the shared inbox's); raises WebhookRejected
    (400) for an untrustworthy one. Nothing is applied here: a worker runs `paypal_event_apply`."""
    try:
        data = webhook_event_verify(headers=headers, body=body)
    except WebhookRejected as exc:
        logger.warning("PayPal webhook rejected (%s): %s", exc.code, exc.message)
        raise
    return provider_event_store(verified=VerifiedEvent(
        provider=PAYPAL, event_id=data["id"], type=data["event_type"][:100], payload=data,
        api_version=str(data.get("resource_version") or ""), provider_created_at=parse_time(data.get("create_time"))))


def paypal_event_apply(*, event_pk: int) -> PayPalEvent:
    """The inbox job's entry into this rail (PayPalProvider.webhook_event_apply): apply a stored delivery
    once, as the webhook's actor."""
    return paypal_event_process(event_pk=event_pk, actor=WEBHOOK_ACTOR)


def _event_prepare(*, event_pk: int, force: bool) -> dict:
    event = PayPalEvent.objects.get(pk=event_pk)
    preparer = PREPARERS.get(event.type)
    if preparer is None or (event.status != S.PENDING and not force):
        return {}
    return {"prepared": preparer(event=event)}


def paypal_event_process(*, event_pk: int, actor: Actor, force: bool = False) -> PayPalEvent:
    """Run an event's handler once; with `force` (replay, admin) any event again, which the handlers make
    harmless. PayPal calls the handler needs run first, outside the transaction that locks the event."""
    prepared = _event_prepare(event_pk=event_pk, force=force)
    with transaction.atomic():
        event = PayPalEvent.objects.select_for_update().get(pk=event_pk)
        if event.status != S.PENDING and not force:
            return event
        event.attempts += 1
        event.processed_at = timezone.now()
        handler = HANDLERS.get(event.type)
        if handler is None:
            event.status, event.error = S.IGNORED, f"no handler for {event.type}"
        else:
            try:
                with transaction.atomic():
                    outcome = handler(event=event, actor=actor, **prepared)
            except Exception as exc:  # any handler error is recorded on the event for a replay
                logger.exception("PayPal event %s (%s) failed", event.event_id, event.type)
                event.status = S.FAILED
                event.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"[-4000:]
            else:
                applied = outcome.applied or event.status == S.PROCESSED
                event.status = S.PROCESSED if applied else S.IGNORED
                event.error = outcome.note
        event.save(update_fields=["status", "attempts", "processed_at", "error"])
        return event


def paypal_event_reprocess(*, event: PayPalEvent, actor: Actor) -> PayPalEvent:
    logger.info("PayPal event %s reprocessed by %s", event.event_id, actor.label)
    return paypal_event_process(event_pk=event.pk, actor=actor, force=True)


def paypal_event_replay(*, actor: Actor, failed_only: bool = False, since: datetime | None = None) -> list[PayPalEvent]:
    """Reprocess stored events in PayPal's order (oldest create_time first), one transaction each."""
    events = PayPalEvent.objects.all()
    if failed_only:
        events = events.filter(status=S.FAILED)
    if since is not None:
        events = events.filter(received_at__gte=since)
    pks = list(events.order_by("provider_created_at", "id").values_list("pk", flat=True))
    return [paypal_event_process(event_pk=pk, actor=actor, force=True) for pk in pks]
