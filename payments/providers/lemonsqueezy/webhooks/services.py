"""The Lemon Squeezy event inbox: verify, store once under a derived id, process once, replay (the shared
inbox, payments/providers/inbox.py, on the ProviderEvent table; the same protocol as PayPal's).

Lemon Squeezy names no event id, so `event_id_derive` (verification.py) gives each delivery a stable one.
Its `meta.event_name` is the event's type; the object's `updated_at` is its provider time, which orders
a replay."""

import logging
from collections.abc import Mapping
from datetime import datetime

from core.audit import Actor
from core.exceptions import WebhookRejected
from payments.providers.inbox import (
    InboxRail,
    StoredEvent,
    VerifiedEvent,
    provider_event_process,
    provider_event_store,
    provider_events_replay,
)
from payments.providers.lemonsqueezy.models import LEMONSQUEEZY, LemonSqueezyEvent
from payments.providers.lemonsqueezy.payloads import parse_time
from payments.providers.lemonsqueezy.webhooks.handlers import HANDLERS
from payments.providers.lemonsqueezy.webhooks.verification import event_id_derive, webhook_event_verify

logger = logging.getLogger(__name__)

WEBHOOK_ACTOR = Actor.system("lemonsqueezy-webhook")


def lemonsqueezy_event_receive(*, body: bytes, headers: Mapping[str, str]) -> StoredEvent:
    """Verify and store one delivery, deferring its apply job; raises WebhookRejected (400) for an
    untrustworthy one. Nothing is applied here: a worker runs `lemonsqueezy_event_apply`."""
    try:
        event = webhook_event_verify(headers=headers, body=body)
    except WebhookRejected as exc:
        logger.warning("Lemon Squeezy webhook rejected (%s): %s", exc.code, exc.message)
        raise
    attributes = event["data"]["attributes"]
    return provider_event_store(verified=VerifiedEvent(
        provider=LEMONSQUEEZY, event_id=event_id_derive(event), type=event["meta"]["event_name"][:100],
        payload=event, livemode=attributes.get("test_mode") is False,
        provider_created_at=parse_time(attributes.get("updated_at")) or parse_time(attributes.get("created_at"))))


def lemonsqueezy_event_apply(*, event_pk: int) -> LemonSqueezyEvent:
    """The inbox job's entry into this rail (LemonSqueezyProvider.webhook_event_apply)."""
    return lemonsqueezy_event_process(event_pk=event_pk, actor=WEBHOOK_ACTOR)


LEMONSQUEEZY_INBOX = InboxRail(label="Lemon Squeezy", model=LemonSqueezyEvent, handlers=HANDLERS, preparers={})


def lemonsqueezy_event_process(*, event_pk: int, actor: Actor, force: bool = False) -> LemonSqueezyEvent:
    return provider_event_process(rail=LEMONSQUEEZY_INBOX, event_pk=event_pk, actor=actor, force=force)


def lemonsqueezy_event_reprocess(*, event: LemonSqueezyEvent, actor: Actor) -> LemonSqueezyEvent:
    logger.info("Lemon Squeezy event %s reprocessed by %s", event.event_id, actor.label)
    return lemonsqueezy_event_process(event_pk=event.pk, actor=actor, force=True)


def lemonsqueezy_event_replay(*, actor: Actor, failed_only: bool = False,
                              since: datetime | None = None) -> list[LemonSqueezyEvent]:
    """Reprocess stored events in Lemon Squeezy's order (oldest updated_at first), one transaction each."""
    return provider_events_replay(rail=LEMONSQUEEZY_INBOX, actor=actor, failed_only=failed_only, since=since)
