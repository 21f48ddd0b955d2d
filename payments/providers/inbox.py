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
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from core.jobs import job_defer
from payments.providers.models import ProviderEvent
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
