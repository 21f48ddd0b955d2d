"""The webhook inbox every rail shares: store a verified delivery once, and apply it later on a worker.

A rail's webhook view verifies a delivery and calls `provider_event_store`, which inserts the event under
its unique (provider, event id) and, in the same transaction, defers one `payments.provider_event_apply`
job: the job exists only if the event was stored, and a duplicate delivery (refused by the unique index)
defers nothing. The view answers at once; a worker runs `provider_event_apply`, which hands the event to
the rail that stored it (its `webhook_event_apply`, a dotted path on the rail's provider class), so a new
rail plugs in by naming its apply function there.

Exactly once and ordering stay the rail's apply function's own guarantees (docs/providers.md): it locks
the event row and applies only a pending event, so a job retried, requeued or run twice applies once, and
its handlers lock the rows they change and refuse stale or backward messages, so events of one object
applied by several workers at once, in any order, end in the same state.
"""

import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from core.audit import Actor
from core.jobs import job_defer
from payments.providers.models import ProviderEvent, ProviderEventStatus
from payments.providers.registry import provider_installed_for

logger = logging.getLogger(__name__)

PROVIDER_EVENT_APPLY_TASK = "payments.provider_event_apply"


@dataclass(frozen=True)
class StoredEvent:
    event: ProviderEvent
    # True when this event id was already stored: nothing was stored or deferred this time.
    duplicate: bool


@dataclass(frozen=True)
class VerifiedEvent:
    """What a rail read from a verified delivery, in the inbox's terms."""

    provider: str
    event_id: str
    type: str
    payload: dict
    api_version: str = ""
    livemode: bool = False
    provider_created_at: datetime | None = None


def provider_event_store(*, verified: VerifiedEvent) -> StoredEvent:
    """Store a verified delivery once and defer its apply job in the same transaction."""
    try:
        with transaction.atomic():
            event = ProviderEvent.objects.create(
                provider=verified.provider, event_id=verified.event_id, type=verified.type,
                api_version=verified.api_version[:32], livemode=verified.livemode, payload=verified.payload,
                provider_created_at=verified.provider_created_at)
            job_defer(name=PROVIDER_EVENT_APPLY_TASK, provider_event_id=event.pk)
    except IntegrityError:
        logger.info("%s event %s delivered again; already stored", verified.provider, verified.event_id)
        event = ProviderEvent.objects.get(provider=verified.provider, event_id=verified.event_id)
        return StoredEvent(event=event, duplicate=True)
    return StoredEvent(event=event, duplicate=False)


def provider_event_apply(*, provider_event_id: int) -> ProviderEvent:
    """Apply one stored event through the rail that received it (the worker's side of the inbox).

    Safe to run any number of times: the rail applies a pending event once and answers the stored row
    for one already applied."""
    provider = ProviderEvent.objects.values_list("provider", flat=True).get(pk=provider_event_id)
    rail = provider_installed_for(provider)
    if rail is None or not getattr(rail, "webhook_event_apply", ""):
        # The rail was uninstalled after the event was stored: the event stays pending, for a replay
        # once it is back, rather than being marked with an outcome nobody decided.
        logger.warning("no installed rail applies %s events; event #%s left pending", provider, provider_event_id)
        return ProviderEvent.objects.get(pk=provider_event_id)
    return import_string(rail.webhook_event_apply)(event_pk=provider_event_id)


@dataclass(frozen=True)
class InboxRail:
    """What the inbox needs of a rail to process its stored events: its proxy of ProviderEvent, one
    handler per event type, and the provider look-ups (preparers) a handler needs made beforehand."""

    label: str
    model: type[ProviderEvent]
    handlers: Mapping[str, Callable]
    preparers: Mapping[str, Callable]


def _event_prepare(*, rail: InboxRail, event_pk: int, force: bool) -> dict:
    """The handler's provider look-ups, made before the event's transaction (no lock held meanwhile)."""
    event = rail.model.objects.get(pk=event_pk)
    preparer = rail.preparers.get(event.type)
    if preparer is None or (event.status != ProviderEventStatus.PENDING and not force):
        return {}
    return {"prepared": preparer(event=event)}


def provider_event_process(*, rail: InboxRail, event_pk: int, actor: Actor, force: bool = False) -> ProviderEvent:
    """Run an event's handler once. Without `force` only a pending event is processed (the first
    delivery); with it (replay, admin) any event is processed again, which the handlers make harmless.

    The event row is locked (select_for_update), so a job run twice, or a job and a replay, cannot both
    apply it; the handler runs in a savepoint, so a failing handler leaves no half-applied writes and the
    event is marked failed with the error. Provider look-ups run first, outside that transaction."""
    prepared = _event_prepare(rail=rail, event_pk=event_pk, force=force)
    with transaction.atomic():
        event = rail.model.objects.select_for_update().get(pk=event_pk)
        if event.status != ProviderEventStatus.PENDING and not force:
            return event
        event.attempts += 1
        event.processed_at = timezone.now()
        handler = rail.handlers.get(event.type)
        if handler is None:
            event.status, event.error = ProviderEventStatus.IGNORED, f"no handler for {event.type}"
        else:
            _event_handle(rail=rail, event=event, handler=handler, actor=actor, prepared=prepared)
        event.save(update_fields=["status", "attempts", "processed_at", "error"])
        return event


def _event_handle(*, rail: InboxRail, event: ProviderEvent, handler: Callable, actor: Actor, prepared: dict) -> None:
    try:
        with transaction.atomic():
            outcome = handler(event=event, actor=actor, **prepared)
    except Exception as exc:  # any handler error is recorded on the event for a replay
        logger.exception("%s event %s (%s) failed", rail.label, event.event_id, event.type)
        event.status = ProviderEventStatus.FAILED
        event.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"[-4000:]
    else:
        # A replay of an event that was applied the first time changes nothing, and stays processed.
        applied = outcome.applied or event.status == ProviderEventStatus.PROCESSED
        event.status = ProviderEventStatus.PROCESSED if applied else ProviderEventStatus.IGNORED
        # For an ignored event this says why (stale, repeated, not ours): it is not an error.
        event.error = outcome.note


def provider_events_requeue(*, model: type[ProviderEvent], event_pks: list[int]) -> int:
    """Put a rail's failed events back to pending with a new apply job each (in the caller's transaction, so
    the jobs exist only if it commits): for events that failed only because something they name did not
    exist yet, once the rail knows it does. Returns how many were put back."""
    pks = sorted(model.objects.filter(pk__in=event_pks, status=ProviderEventStatus.FAILED).values_list("pk", flat=True))
    model.objects.filter(pk__in=pks).update(status=ProviderEventStatus.PENDING)
    for pk in pks:
        job_defer(name=PROVIDER_EVENT_APPLY_TASK, provider_event_id=pk)
    return len(pks)


def provider_events_replay(*, rail: InboxRail, actor: Actor, failed_only: bool = False,
                           since: datetime | None = None, event_id: str | None = None) -> list[ProviderEvent]:
    """Reprocess a rail's stored events in the provider's order (oldest first), one transaction each, so
    an interrupted replay can simply be run again."""
    events = rail.model.objects.all()
    if failed_only:
        events = events.filter(status=ProviderEventStatus.FAILED)
    if since is not None:
        events = events.filter(received_at__gte=since)
    if event_id:
        events = events.filter(event_id=event_id)
    pks = list(events.order_by("provider_created_at", "id").values_list("pk", flat=True))
    return [provider_event_process(rail=rail, event_pk=pk, actor=actor, force=True) for pk in pks]
