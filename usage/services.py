"""Writes of metered usage. An event is stored once per (customer, idempotency key); a meter with a
credit price debits the customer's credits in the same transaction, so both happen or neither."""

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import InvalidOperation
from core.safe_input import datetime_problem
from credits.services import credit_debit
from subscriptions.models import Customer
from usage.live import usage_recorded
from usage.models import Meter, UsageEvent
from usage.thresholds import usage_thresholds_apply, usage_thresholds_prepare


@dataclass(frozen=True)
class UsageRecord:
    event: UsageEvent
    # False when the idempotency key was seen before: the stored event is returned, nothing is debited.
    created: bool
    credits_debited: int = 0


def usage_credits_for(*, meter: Meter, quantity: Decimal) -> int:
    """Credits an event costs. Rounded up: a fraction of a metered unit is never free."""
    if not meter.credits_per_unit:
        return 0
    return math.ceil(Decimal(quantity) * meter.credits_per_unit)


@transaction.atomic
def usage_event_record(*, customer: Customer, meter: Meter, idempotency_key: str, quantity: Decimal = Decimal(1),
                       occurred_at: datetime | None = None, properties: dict | None = None,
                       actor: Actor | None = None) -> UsageRecord:
    if not idempotency_key:
        raise InvalidOperation(_("A usage event needs an idempotency key."), code="idempotency_key_required")
    if Decimal(quantity) < 0:
        raise InvalidOperation(_("Usage quantity cannot be negative."), code="invalid_quantity")
    if not meter.is_active:
        raise InvalidOperation(_("Meter %(meter)s is not active.") % {"meter": meter.code}, code="meter_inactive")
    event = UsageEvent(customer=customer, meter=meter, quantity=quantity, idempotency_key=idempotency_key,
                       occurred_at=occurred_at or timezone.now(), properties=properties or {})
    thresholds = usage_thresholds_prepare(customer=customer, meters=[meter], now=timezone.now())
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:
        existing = UsageEvent.objects.get(customer=customer, idempotency_key=idempotency_key)
        return UsageRecord(event=existing, created=False)
    credits = usage_credits_for(meter=meter, quantity=event.quantity)
    if credits:  # the debit checks the credit-balance thresholds itself
        debited_at = event.occurred_at if event.occurred_at <= timezone.now() else None
        credit_debit(customer=customer, amount=credits, actor=actor or Actor.system("usage"),
                     reason=f"{meter.code} x {event.quantity}", idempotency_key=f"usage:{idempotency_key}",
                     now=debited_at)
    if thresholds is not None:  # as for batches: a passed hard cap rolls the event and its debit back
        usage_thresholds_apply(check=thresholds)
    usage_recorded(customer_id=customer.pk)
    return UsageRecord(event=event, created=True, credits_debited=credits)


# ------------------------------------------------------------------------------------ batches

USAGE_BATCH_MAX_EVENTS = 1000
# Clocks drift; an event stamped a little in the future is accepted, one far ahead is a client bug.
USAGE_MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class UsageEventInput:
    meter_code: str
    idempotency_key: str
    quantity: Decimal = Decimal(1)
    occurred_at: datetime | None = None
    properties: dict = field(default_factory=dict)
    # The typed dimensions sent (column name -> value; cost as a Decimal string), checked by the parser.
    dimensions: dict = field(default_factory=dict)


@dataclass(frozen=True)
class UsageEventOutcome:
    idempotency_key: str
    # "created": stored by this call; "duplicate": the key was stored before (or earlier in the batch).
    status: str
    id: int


@dataclass(frozen=True)
class UsageBatchResult:
    results: list[UsageEventOutcome]
    created: int
    duplicates: int
    credits_debited: int


def _usage_insert_sql() -> str:
    table = connection.ops.quote_name(UsageEvent._meta.db_table)
    # One statement for the whole batch. The rows travel as one JSON array parameter (one string to
    # quote instead of thousands of array elements), PostgreSQL unpacks it, the unique
    # (customer, idempotency_key) constraint drops the keys already stored, and RETURNING says which
    # rows were new, so duplicates are told apart without a second query for the new ones.
    return (
        f"INSERT INTO {table} (customer_id, meter_id, quantity, occurred_at, idempotency_key, properties, received_at, "
        "tokens_used, response_time_ms, cost, request_id, batch_id, endpoint, language_code, category) "
        "SELECT %s, (e->>0)::bigint, (e->>1)::numeric, (e->>2)::timestamptz, e->>3, e->4, now(), "
        "(e->5->>'tokens_used')::bigint, (e->5->>'response_time_ms')::integer, (e->5->>'cost')::numeric, "
        "COALESCE(e->5->>'request_id', ''), COALESCE(e->5->>'batch_id', ''), COALESCE(e->5->>'endpoint', ''), "
        "COALESCE(e->5->>'language_code', ''), COALESCE(e->5->>'category', '') "
        "FROM jsonb_array_elements(%s::jsonb) AS e "
        "ON CONFLICT (customer_id, idempotency_key) DO NOTHING "
        "RETURNING idempotency_key, id"
    )


def _usage_rows_insert(*, customer: Customer, rows: list[UsageEventInput], meters: dict[str, Meter],
                       now: datetime) -> dict[str, int]:
    """Insert the rows whose key is new; {idempotency key: id} of those inserted by this call."""
    if connection.vendor == "sqlite":
        # The embedded default: SQLite lets one writer in at a time, so the keys stored before cannot
        # change between this read and the insert.
        keys = [e.idempotency_key for e in rows]
        existing = set(UsageEvent.objects.filter(customer=customer, idempotency_key__in=keys)
                       .values_list("idempotency_key", flat=True))
        UsageEvent.objects.bulk_create([
            UsageEvent(customer=customer, meter=meters[e.meter_code], quantity=e.quantity,
                       occurred_at=e.occurred_at or now, idempotency_key=e.idempotency_key,
                       properties=e.properties or {}, **e.dimensions)
            for e in rows if e.idempotency_key not in existing], batch_size=500)
        return dict(UsageEvent.objects.filter(customer=customer, idempotency_key__in=[
            k for k in keys if k not in existing]).values_list("idempotency_key", "id"))
    with connection.cursor() as cursor:
        default_time = now.isoformat()
        cursor.execute(_usage_insert_sql(), [customer.pk, json.dumps([
            [meters[e.meter_code].pk, str(e.quantity), e.occurred_at.isoformat() if e.occurred_at else default_time,
             e.idempotency_key, e.properties or {}, *([e.dimensions] if e.dimensions else [])]
            for e in rows
        ])])
        return dict(cursor.fetchall())


def _usage_batch_errors(*, events: Sequence[UsageEventInput], meters: dict[str, Meter],
                        now: datetime) -> dict[str, dict[str, list[str]]]:
    errors: dict[str, dict[str, list[str]]] = {}
    for index, event in enumerate(events):
        problems: dict[str, list[str]] = {}
        if event.meter_code not in meters:
            problems["meter"] = [_("No active meter with code %(code)r.") % {"code": event.meter_code}]
        if not event.idempotency_key or len(event.idempotency_key) > 255:
            problems["idempotency_key"] = [_("Give 1 to 255 characters.")]
        if event.quantity < 0:
            problems["quantity"] = [_("Usage quantity cannot be negative.")]
        if event.occurred_at is not None and (problem := datetime_problem(event.occurred_at)):
            problems["occurred_at"] = [problem]
        elif event.occurred_at is not None and event.occurred_at > now + USAGE_MAX_CLOCK_SKEW:
            problems["occurred_at"] = [_("The event is dated in the future.")]
        if problems:
            errors[str(index)] = problems
    return errors


def _batch_debit(*, customer: Customer, created_keys: list[str], credits: int, actor: Actor | None,
                 now: datetime) -> int | None:
    """Debit the credits of a batch's new events in one ledger entry; the balance after (None: nothing due)."""
    if not credits:
        return None
    # The key names the set of events this debit pays for; each event is created once, so a different
    # batch can never produce the same key.
    digest = hashlib.sha256("\n".join(sorted(created_keys)).encode()).hexdigest()
    return credit_debit(customer=customer, amount=credits, actor=actor or Actor.system("usage"),
                        reason=f"usage: {len(created_keys)} events", idempotency_key=f"usage-batch:{digest}",
                        now=now).balance


@transaction.atomic
def usage_events_record_batch(*, customer: Customer, events: Sequence[UsageEventInput],
                              actor: Actor | None = None, now: datetime | None = None) -> UsageBatchResult:
    """Store up to 1,000 events exactly once per (customer, idempotency key), in one INSERT, and debit
    the credits of the newly stored ones in the same transaction: all of it happens or none of it.

    Meters are resolved with one query. Invalid events reject the whole batch (InvalidOperation with
    per-index `fields`); not enough credits rejects it with InsufficientCredits and stores nothing; a
    batch that would pass a hard cap is rejected with SpendCapReached (usage/thresholds.py).
    """
    if not events:
        raise InvalidOperation(_("A batch needs at least one event."), code="empty_batch")
    if len(events) > USAGE_BATCH_MAX_EVENTS:
        raise InvalidOperation(_("A batch holds at most %(limit)s events.") % {"limit": USAGE_BATCH_MAX_EVENTS},
                               code="batch_too_large")
    now = now or timezone.now()
    meters = {m.code: m for m in Meter.objects.filter(code__in={e.meter_code for e in events}, is_active=True)}
    errors = _usage_batch_errors(events=events, meters=meters, now=now)
    if errors:
        raise InvalidOperation(_("Some events are invalid; nothing was stored."), code="invalid_events",
                               extra={"fields": {"events": errors}})

    # The first event with a key is the one stored; a repeat later in the same batch is a duplicate.
    first: dict[str, UsageEventInput] = {}
    for event in events:
        first.setdefault(event.idempotency_key, event)
    # Sorted keys: concurrent batches sharing keys take the unique-index locks in one order (no deadlock).
    keys = sorted(first)
    rows = [first[k] for k in keys]
    thresholds = usage_thresholds_prepare(customer=customer, meters=list(meters.values()), now=now)
    created_ids = _usage_rows_insert(customer=customer, rows=rows, meters=meters, now=now)
    stored_before: dict[str, int] = {}
    if len(created_ids) < len(keys):
        stored_before = dict(UsageEvent.objects.filter(customer=customer, idempotency_key__in=[
            k for k in keys if k not in created_ids]).values_list("idempotency_key", "id"))

    credits = sum(usage_credits_for(meter=meters[first[k].meter_code], quantity=first[k].quantity)
                  for k in created_ids)
    _batch_debit(customer=customer, created_keys=list(created_ids), credits=credits, actor=actor, now=now)
    if thresholds is not None:  # last: a passed hard cap rolls back the events and the debit with them
        usage_thresholds_apply(check=thresholds)

    if created_ids:
        usage_recorded(customer_id=customer.pk)
    results = []
    seen: set[str] = set()
    for event in events:
        key = event.idempotency_key
        if key in created_ids and key not in seen:
            results.append(UsageEventOutcome(idempotency_key=key, status="created", id=created_ids[key]))
        else:
            results.append(UsageEventOutcome(idempotency_key=key, status="duplicate",
                                             id=created_ids.get(key) or stored_before[key]))
        seen.add(key)
    return UsageBatchResult(results=results, created=len(created_ids), duplicates=len(events) - len(created_ids),
                            credits_debited=credits)
