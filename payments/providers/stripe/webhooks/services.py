"""The Stripe event inbox: verify, store once, process once (on a worker), replay.

- A delivery is verified on its raw body (signature, 300 s tolerance, JSON) before anything is stored;
  a rejected one leaves a log line and a per-minute counter in the cache that /healthz reports.
- It is stored under its unique event id by the shared inbox (payments.providers.inbox), which defers
  its apply job in the same transaction, and answered at once. A concurrent or later duplicate delivery
  fails on the unique index and answers 200 without storing or deferring anything.
- A worker processes it (stripe_event_apply) in its own transaction with the event row locked
  (select_for_update), so a job run twice, or a job and a replay, cannot both apply it; the handler runs
  in a savepoint, so a failing handler leaves no half-applied writes and the event is marked failed
  with the error.
- What a handler needs to ask Stripe (PREPARERS) is asked before that transaction opens: no row is locked
  while Stripe answers.
"""

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

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
from payments.providers.stripe import gateway as stripe_gateway
from payments.providers.stripe.models import STRIPE, StripeEvent
from payments.providers.stripe.webhooks.handlers import HANDLERS, PREPARERS
from payments.providers.stripe.webhooks.selectors import REJECTED_KEY, REJECTION_WINDOW_MINUTES, minute_bucket

logger = logging.getLogger(__name__)

WEBHOOK_ACTOR = Actor.system("stripe-webhook")

def webhook_rejection_record(*, now: datetime | None = None) -> None:
    key = REJECTED_KEY.format(minute=minute_bucket(now or timezone.now()))
    # add() is a no-op when the bucket exists; incr() is atomic on Redis and in the local-memory cache.
    cache.add(key, 0, timeout=(REJECTION_WINDOW_MINUTES + 1) * 60)
    try:
        cache.incr(key)
    except ValueError:  # the bucket expired between add() and incr()
        cache.add(key, 1, timeout=(REJECTION_WINDOW_MINUTES + 1) * 60)


def stripe_event_receive(*, payload: bytes, signature_header: str) -> StoredEvent:
    """Verify and store one delivery, deferring its apply job (the inbox's); raises WebhookRejected (400)
    for an untrustworthy one. Nothing is applied here: a worker runs `stripe_event_apply`."""
    try:
        data = stripe_gateway.webhook_event_verify(payload=payload, signature_header=signature_header,
                                                   secret=settings.STRIPE_WEBHOOK_SECRET)
    except WebhookRejected as exc:
        webhook_rejection_record()
        logger.warning("Stripe webhook rejected (%s): %s", exc.code, exc.message)
        raise
    created = data.get("created")
    return provider_event_store(verified=VerifiedEvent(
        provider=STRIPE, event_id=data["id"], type=data["type"], payload=data,
        api_version=str(data.get("api_version") or ""), livemode=bool(data.get("livemode")),
        provider_created_at=datetime.fromtimestamp(int(created), tz=UTC) if created else None))


def stripe_event_apply(*, event_pk: int) -> StripeEvent:
    """The inbox job's entry into this rail (StripeProvider.webhook_event_apply): apply a stored delivery
    once, as the webhook's actor."""
    return stripe_event_process(event_pk=event_pk, actor=WEBHOOK_ACTOR)


STRIPE_INBOX = InboxRail(label="Stripe", model=StripeEvent, handlers=HANDLERS, preparers=PREPARERS)


def stripe_event_process(*, event_pk: int, actor: Actor, force: bool = False) -> StripeEvent:
    """Run an event's handler once (the shared inbox's processing; `force` for a replay)."""
    return provider_event_process(rail=STRIPE_INBOX, event_pk=event_pk, actor=actor, force=force)


def stripe_event_reprocess(*, event: StripeEvent, actor: Actor) -> StripeEvent:
    logger.info("Stripe event %s reprocessed by %s", event.event_id, actor.label)
    return stripe_event_process(event_pk=event.pk, actor=actor, force=True)


def stripe_event_replay(*, actor: Actor, failed_only: bool = False, since: datetime | None = None,
                        event_id: str | None = None) -> list[StripeEvent]:
    """Reprocess stored events in Stripe's order (oldest `created` first), one transaction each."""
    return provider_events_replay(rail=STRIPE_INBOX, actor=actor, failed_only=failed_only, since=since,
                                  event_id=event_id)
