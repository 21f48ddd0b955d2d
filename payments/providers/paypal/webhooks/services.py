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
from collections.abc import Mapping
from datetime import datetime

from core.audit import Actor
from core.exceptions import WebhookRejected
from payments.models import ProviderEventStatus
from payments.providers.inbox import (
    InboxRail,
    StoredEvent,
    VerifiedEvent,
    provider_event_process,
    provider_event_store,
    provider_events_replay,
)
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


PAYPAL_INBOX = InboxRail(label="PayPal", model=PayPalEvent, handlers=HANDLERS, preparers=PREPARERS)


def paypal_event_process(*, event_pk: int, actor: Actor, force: bool = False) -> PayPalEvent:
    """Run an event's handler once (the shared inbox's processing; `force` for a replay)."""
    return provider_event_process(rail=PAYPAL_INBOX, event_pk=event_pk, actor=actor, force=force)


def paypal_event_reprocess(*, event: PayPalEvent, actor: Actor) -> PayPalEvent:
    logger.info("PayPal event %s reprocessed by %s", event.event_id, actor.label)
    return paypal_event_process(event_pk=event.pk, actor=actor, force=True)


def paypal_event_replay(*, actor: Actor, failed_only: bool = False, since: datetime | None = None) -> list[PayPalEvent]:
    """Reprocess stored events in PayPal's order (oldest create_time first), one transaction each."""
    return provider_events_replay(rail=PAYPAL_INBOX, actor=actor, failed_only=failed_only, since=since)
