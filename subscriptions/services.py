"""Writes for customers, plans and subscriptions. Every status move goes through
`subscription_transition`, which refuses illegal moves and writes the audit row."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext

from core.audit import Actor
from core.bulk import AUDIT_FIELDS, array_of, audit_values, json_text, rows_copy, rows_update
from core.exceptions import IdempotencyConflict, IllegalTransition, InvalidOperation
from core.jobs import job_defer, jobs_defer_many
from core.safe_input import json_storable
from subscriptions.count_rollups import AuditMove, subscription_counts_move, subscription_states_before
from subscriptions.emails import SUBSCRIPTION_CANCELED_TASK
from subscriptions.live import subscription_changed
from subscriptions.models import (
    ApiIdempotencyKey,
    Customer,
    Plan,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from subscriptions.mrr_rollups import customer_mrr_refresh
from subscriptions.periods import period_boundary
from subscriptions.webhooks import subscription_webhook_emit, subscriptions_webhook_emit_many

S = SubscriptionStatus

ALLOWED_SUBSCRIPTION_TRANSITIONS: dict[str, set[str]] = {
    S.INCOMPLETE: {S.ACTIVE, S.TRIALING, S.CANCELED},
    S.TRIALING: {S.ACTIVE, S.PAST_DUE, S.PAUSED, S.CANCELED},
    S.ACTIVE: {S.PAST_DUE, S.PAUSED, S.CANCELED},
    S.PAST_DUE: {S.ACTIVE, S.PAUSED, S.CANCELED},
    S.PAUSED: {S.ACTIVE, S.CANCELED},
    S.CANCELED: set(),
}


def customer_create(*, name: str, email: str, user=None, currency: str | None = None,
                    external_id: str | None = None, metadata: dict | None = None, name_ar: str = "",
                    preferred_language: str = "") -> Customer:
    customer = Customer(
        name=name, email=email, user=user, currency=(currency or settings.DEFAULT_CURRENCY).upper(),
        external_id=external_id, metadata=metadata or {}, name_ar=name_ar,
        preferred_language=preferred_language or settings.LANGUAGE_CODE,
    )
    customer.full_clean(exclude=["user"])
    customer.save()
    return customer


def subscription_event_write(*, subscription: Subscription, kind: str, actor: Actor, reason: str = "",
                             from_status: str = "", to_status: str = "", from_plan: Plan | None = None,
                             to_plan: Plan | None = None, data: dict | None = None) -> SubscriptionEvent:
    before = subscription_states_before(subscription_ids=[subscription.pk])
    event = SubscriptionEvent(
        subscription=subscription, kind=kind, reason=reason[:500], from_status=from_status, to_status=to_status,
        from_plan=from_plan, to_plan=to_plan, data=data or {},
    )
    event.stamp(actor)
    event.save()
    subscription_counts_move(before=before, at=event.created_at, moves=[AuditMove(
        subscription_id=subscription.pk, kind=kind, to_status=to_status,
        from_plan_id=from_plan.pk if from_plan else None, to_plan_id=to_plan.pk if to_plan else None)])
    subscription_webhook_emit(subscription=subscription, kind=kind, to_status=to_status)
    subscription_changed(subscription_id=subscription.pk,
                         kind="created" if kind == SubscriptionEventKind.CREATED else "updated")
    return event


@dataclass
class EventSpec:
    """A subscription audit row to be written in bulk by `subscription_events_write_many`."""

    subscription_id: int
    kind: str
    reason: str = ""
    from_status: str = ""
    to_status: str = ""
    from_plan_id: int | None = None
    to_plan_id: int | None = None
    data: dict = field(default_factory=dict)


_EVENT_FIELDS = (*AUDIT_FIELDS, "subscription", "kind", "from_status", "to_status", "from_plan", "to_plan", "data")


def subscription_events_write_many(*, events: list[EventSpec], actor: Actor) -> None:
    """The same audit rows as `subscription_event_write`, for a whole batch in one COPY."""
    now = timezone.now()
    before = subscription_states_before(subscription_ids={e.subscription_id for e in events})
    rows_copy(model=SubscriptionEvent, fields=_EVENT_FIELDS, rows=(
        (*audit_values(actor=actor, reason=e.reason, now=now), e.subscription_id, e.kind, e.from_status,
         e.to_status, e.from_plan_id, e.to_plan_id, json_text(e.data))
        for e in events))
    subscription_counts_move(before=before, at=now, moves=[AuditMove(
        subscription_id=e.subscription_id, kind=e.kind, to_status=e.to_status, from_plan_id=e.from_plan_id,
        to_plan_id=e.to_plan_id) for e in events])
    subscriptions_webhook_emit_many(changes=[(e.subscription_id, e.kind, e.to_status) for e in events])


def subscription_transition(*, subscription: Subscription, to_status: str, actor: Actor, reason: str = "",
                            now: datetime | None = None, data: dict | None = None) -> Subscription:
    """Move a (locked) subscription to `to_status`, or raise IllegalTransition."""
    now = now or timezone.now()
    from_status = subscription.status
    if to_status not in ALLOWED_SUBSCRIPTION_TRANSITIONS[from_status]:
        raise IllegalTransition(gettext("A %(from_status)s subscription cannot become %(to_status)s.")
                                % {"from_status": from_status, "to_status": to_status},
                                extra={"from": from_status, "to": to_status})
    subscription.status = to_status
    fields = ["status", "updated_at"]
    if to_status == S.CANCELED:
        subscription.canceled_at = subscription.canceled_at or now
        subscription.ended_at = now
        subscription.cancel_at_period_end = False
        fields += ["canceled_at", "ended_at", "cancel_at_period_end"]
    if to_status == S.PAUSED:
        subscription.paused_at = now
        fields.append("paused_at")
    if from_status == S.PAUSED:
        subscription.paused_at = None
        fields.append("paused_at")
    subscription.save(update_fields=fields)
    subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.STATUS_CHANGED, actor=actor,
                             reason=reason, from_status=from_status, to_status=to_status, data=data)
    if to_status == S.CANCELED:
        customer_mrr_refresh(customer_ids=[subscription.customer_id])
        job_defer(name=SUBSCRIPTION_CANCELED_TASK, subscription_id=subscription.pk)
    return subscription


@dataclass(frozen=True)
class StatusMove:
    """One subscription's move for `subscription_transition_many`."""

    subscription_id: int
    to_status: str
    reason: str = ""
    data: dict = field(default_factory=dict)


def _bulk_side_effects(*, to_status: str, now: datetime, at_period_end: bool) -> dict:
    """What `subscription_transition` sets besides the status, as column expressions evaluated on each row's
    values before the UPDATE (so `status` below is the status being left)."""
    if to_status == S.CANCELED:
        ended = F("current_period_end") if at_period_end else Value(now)
        return {"canceled_at": Coalesce(F("canceled_at"), ended), "ended_at": ended, "cancel_at_period_end": False,
                "paused_at": Case(When(status=S.PAUSED, then=Value(None)), default=F("paused_at"))}
    if to_status == S.PAUSED:
        return {"paused_at": Value(now)}
    return {"paused_at": Case(When(status=S.PAUSED, then=Value(None)), default=F("paused_at"))}


def _legal_sources(to_status: str) -> list[str]:
    return [status for status, allowed in ALLOWED_SUBSCRIPTION_TRANSITIONS.items() if to_status in allowed]


def _moves_by_target(moves: list[StatusMove]) -> dict[str, dict[int, StatusMove]]:
    """The moves grouped by target status, targets in the order first asked for (later moves of one
    subscription to the same target replace earlier ones)."""
    by_target: dict[str, dict[int, StatusMove]] = {}
    for move in moves:
        by_target.setdefault(move.to_status, {})[move.subscription_id] = move
    return by_target


def _canceled_follow_up(*, subscription_ids: list[int]) -> None:
    """What a cancellation sets off besides its row and audit row: the customers' MRR figures, and the
    email job (after the commit)."""
    customer_mrr_refresh(customer_ids=Subscription.objects.filter(pk__in=array_of(subscription_ids))
                         .values_list("customer_id", flat=True))
    jobs_defer_many(name=SUBSCRIPTION_CANCELED_TASK, kwargs_list=[{"subscription_id": pk} for pk in subscription_ids])


def subscription_transition_many(*, moves: list[StatusMove], actor: Actor, now: datetime | None = None,
                                 at_period_end: bool = False) -> list[int]:
    """`subscription_transition` for a batch: per target status one locking read of the rows whose current
    status may legally move there, one UPDATE, and one COPY of all the audit rows at the end, whatever the
    number of subscriptions. A move from a status that may not become its target is refused: the row is
    left as it is and gets no audit row. Returns the ids that moved.

    `at_period_end`: a cancellation takes effect at each subscription's current period end (the billing
    run ending subscriptions whose period is over) rather than at `now`."""
    now = now or timezone.now()
    events, moved = [], []
    for to_status, wanted in _moves_by_target(moves).items():
        rows = list(Subscription.objects.select_for_update()
                    .filter(pk__in=array_of(wanted), status__in=_legal_sources(to_status))
                    .order_by("pk").values_list("pk", "status"))
        if not rows:
            continue
        Subscription.objects.filter(pk__in=array_of(pk for pk, _ in rows)).update(
            status=to_status, updated_at=timezone.now(),
            **_bulk_side_effects(to_status=to_status, now=now, at_period_end=at_period_end))
        for pk, from_status in rows:
            move = wanted[pk]
            events.append(EventSpec(subscription_id=pk, kind=SubscriptionEventKind.STATUS_CHANGED, reason=move.reason,
                                    from_status=from_status, to_status=to_status, data=move.data))
            moved.append(pk)
        if to_status == S.CANCELED:
            _canceled_follow_up(subscription_ids=[pk for pk, _ in rows])
    if events:
        subscription_events_write_many(events=events, actor=actor)
    return moved


@dataclass(frozen=True)
class PeriodChange:
    """A renewed (or ending) subscription's row as the billing run leaves it, for
    `subscription_periods_move_many`: `status` is the one read under its row lock, before any move."""

    subscription_id: int
    status: str
    plan_id: int
    current_period_start: datetime
    current_period_end: datetime


def subscription_periods_move_many(*, changes: list[PeriodChange], moves: list[StatusMove], events: list[EventSpec],
                                   actor: Actor, now: datetime) -> list[int]:
    """The billing run's write of a batch of subscriptions it holds locked: each row's new plan and period
    and its status moves in ONE UPDATE, and the batch's own audit rows (`events`) followed by the status
    rows in ONE COPY. The moves are judged exactly as `subscription_transition_many` judges them (targets
    in the order first asked for, each legal from the status the row has reached), but from the statuses
    the caller read under the lock instead of a second locking read; a cancellation takes effect at the
    period end. Writing the period and then the status cost two UPDATEs of every row (new row versions
    and index entries twice; about 5% of the run). Returns the ids that moved."""
    statuses = {change.subscription_id: change.status for change in changes}
    reached = dict(statuses)
    status_events, canceled = [], []
    for to_status, wanted in _moves_by_target(moves).items():
        legal = _legal_sources(to_status)
        for pk in sorted(wanted):
            if pk not in reached or reached[pk] not in legal:
                continue
            status_events.append(EventSpec(subscription_id=pk, kind=SubscriptionEventKind.STATUS_CHANGED,
                                           reason=wanted[pk].reason, from_status=reached[pk], to_status=to_status,
                                           data=wanted[pk].data))
            reached[pk] = to_status
            if to_status == S.CANCELED:
                canceled.append(pk)
    if events or status_events:
        subscription_events_write_many(events=[*events, *status_events], actor=actor)
    if canceled:  # the columns a cancellation sets besides the status, from the rows as they are
        Subscription.objects.filter(pk__in=array_of(canceled)).update(
            **_bulk_side_effects(to_status=S.CANCELED, now=now, at_period_end=True))
    rows_update(
        model=Subscription, ids=[change.subscription_id for change in changes],
        columns={
            "plan_id": ("bigint", [change.plan_id for change in changes]),
            "current_period_start": ("timestamptz", [change.current_period_start for change in changes]),
            "current_period_end": ("timestamptz", [change.current_period_end for change in changes]),
            "status": ("text", [reached[change.subscription_id] for change in changes]),
        },
        # A scheduled downgrade is used up by the renewal that applies it (or moot once canceled).
        constants={"scheduled_plan_id": None, "updated_at": timezone.now()},
    )
    if canceled:
        _canceled_follow_up(subscription_ids=canceled)
    return [pk for pk in statuses if reached[pk] != statuses[pk]]


def subscription_refuse_mirrored(subscription: Subscription) -> Subscription:
    """Our own cancel, pause, resume and plan change are refused for a subscription a merchant-of-record
    rail bills: that rail makes the change and its webhook moves the mirror (payments routes them there)."""
    if subscription.is_mirrored:
        raise IllegalTransition(gettext("This subscription is billed by %(rail)s; the change is made there and "
                                        "mirrored here.") % {"rail": subscription.billed_by}, code="billed_elsewhere",
                                extra={"billed_by": subscription.billed_by})
    return subscription


def subscription_lock(*, subscription_id: int) -> Subscription:
    """Lock the subscription row alone, then read it with its plan and customer.

    A locking read joined to the plan (FOR UPDATE over a join) that waited for a concurrent plan change
    re-checks the join against the old plan row and finds nothing: the waiter got DoesNotExist (a 500).
    Locking one row and reading after the lock is granted sees the committed winner instead."""
    Subscription.objects.select_for_update().filter(pk=subscription_id).values_list("pk").get()
    return Subscription.objects.select_related("plan", "customer").get(pk=subscription_id)


@transaction.atomic
def subscription_create(*, customer: Customer, plan: Plan, actor: Actor, now: datetime | None = None,
                        with_trial: bool = True, metadata: dict | None = None) -> Subscription:
    """Start a subscription. Free plans start active, plans with a trial start trialing, and paid plans
    start incomplete until their first invoice is paid (payments.services.subscription_start does that)."""
    now = now or timezone.now()
    if not plan.is_active:
        raise InvalidOperation(gettext("Plan %(plan)s takes no new subscriptions.") % {"plan": plan.code},
                               code="plan_inactive")
    if plan.currency != customer.currency:
        raise InvalidOperation(gettext("Plan is billed in %(plan_currency)s but the customer pays in %(currency)s.")
                               % {"plan_currency": plan.currency, "currency": customer.currency},
                               code="currency_mismatch")
    Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.subscriptions.filter(status__in=[s for s in S.values if s != S.CANCELED]).exists():
        raise IllegalTransition(gettext("The customer already has a live subscription; change its plan instead."),
                                code="subscription_exists")
    subscription = Subscription(customer=customer, plan=plan, billing_cycle_anchor=now, current_period_start=now,
                                metadata=metadata or {})
    if with_trial and plan.trial_days:
        subscription.status = S.TRIALING
        subscription.trial_start = now
        subscription.trial_end = now + timedelta(days=plan.trial_days)
        # The trial is its own period; the first paid period is anchored where the trial ends.
        subscription.billing_cycle_anchor = subscription.trial_end
        subscription.current_period_end = subscription.trial_end
    else:
        subscription.status = S.ACTIVE if plan.is_free else S.INCOMPLETE
        subscription.current_period_end = period_boundary(anchor=now, interval=plan.interval,
                                                          interval_count=plan.interval_count, periods=1)
    subscription.save()
    subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.CREATED, actor=actor,
                             to_status=subscription.status, to_plan=plan, reason="subscription created")
    return subscription


@transaction.atomic
def subscription_cancel(*, subscription: Subscription, actor: Actor, at_period_end: bool = False,
                        reason: str = "", now: datetime | None = None) -> Subscription:
    subscription = subscription_lock(subscription_id=subscription.pk)
    subscription_refuse_mirrored(subscription)
    if subscription.status == S.CANCELED:
        raise IllegalTransition(gettext("The subscription is already canceled."), code="already_canceled")
    if at_period_end:
        if subscription.cancel_at_period_end:
            return subscription
        subscription.cancel_at_period_end = True
        subscription.canceled_at = now or timezone.now()
        subscription.save(update_fields=["cancel_at_period_end", "canceled_at", "updated_at"])
        subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.CANCEL_SCHEDULED, actor=actor,
                                 reason=reason, from_status=subscription.status, to_status=subscription.status,
                                 data={"ends_at": subscription.current_period_end.isoformat()})
        return subscription
    return subscription_transition(subscription=subscription, to_status=S.CANCELED, actor=actor, reason=reason,
                                   now=now)


@transaction.atomic
def subscription_pause(*, subscription: Subscription, actor: Actor, reason: str = "",
                       now: datetime | None = None) -> Subscription:
    subscription = subscription_lock(subscription_id=subscription.pk)
    subscription_refuse_mirrored(subscription)
    return subscription_transition(subscription=subscription, to_status=S.PAUSED, actor=actor, reason=reason, now=now)


@transaction.atomic
def subscription_resume(*, subscription: Subscription, actor: Actor, reason: str = "",
                        now: datetime | None = None) -> Subscription:
    """Resume a paused subscription within its period, or withdraw a scheduled cancellation.

    Resuming after the period ended restarts the billing cycle with an invoice, which only the payments
    app can issue: the API and the back office resume through payments.billing.resume, and this refuses
    rather than leave the run to bill the paused periods."""
    now = now or timezone.now()
    subscription = subscription_lock(subscription_id=subscription.pk)
    subscription_refuse_mirrored(subscription)
    if subscription.status == S.PAUSED:
        if subscription.current_period_end <= now:
            raise IllegalTransition(gettext("The period ended while paused: resuming restarts the billing cycle "
                                    "(payments.billing.resume)."), code="resume_restarts_cycle")
        return subscription_transition(subscription=subscription, to_status=S.ACTIVE, actor=actor, reason=reason,
                                       now=now)
    if subscription.cancel_at_period_end and subscription.status != S.CANCELED:
        subscription.cancel_at_period_end = False
        subscription.canceled_at = None
        subscription.save(update_fields=["cancel_at_period_end", "canceled_at", "updated_at"])
        subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.CANCEL_UNSCHEDULED,
                                 actor=actor, reason=reason, from_status=subscription.status,
                                 to_status=subscription.status)
        return subscription
    raise IllegalTransition(gettext("A %(status)s subscription has nothing to resume.")
                            % {"status": subscription.status},
                            code="nothing_to_resume")


# ------------------------------------------------------------------------------ plans and customers


def plan_create(*, actor: Actor, **fields) -> Plan:
    """Add a plan to the catalog (staff). `fields` are Plan's editable fields."""
    plan = Plan(**fields)
    plan.currency = (plan.currency or settings.DEFAULT_CURRENCY).upper()
    plan.full_clean()
    plan.save()
    return plan


# Fields that would silently reprice live subscriptions; a new plan is created instead.
PLAN_PRICE_FIELDS = {"amount", "currency", "interval", "interval_count"}


@transaction.atomic
def plan_update(*, plan: Plan, actor: Actor, **fields) -> Plan:
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    repriced = {name for name, value in fields.items() if name in PLAN_PRICE_FIELDS and getattr(plan, name) != value}
    if repriced and plan.subscriptions.exists():
        raise InvalidOperation(gettext("A plan with subscribers keeps its price (%(fields)s); create a new plan and "
                                       "move subscribers to it.") % {"fields": ", ".join(sorted(repriced))},
                               code="plan_has_subscribers")
    for name, value in fields.items():
        setattr(plan, name, value)
    plan.full_clean()
    plan.save()
    return plan


def customer_update(*, customer: Customer, actor: Actor, **fields) -> Customer:
    """Change a customer's contact details or metadata."""
    if "currency" in fields and fields["currency"] != customer.currency and customer.subscriptions.exists():
        raise InvalidOperation(gettext("A customer with subscriptions keeps its currency."), code="currency_locked")
    # The credits report sums each customer's ledger under the currency it was written in (credits'
    # day rollup): a customer's credit history must not move to another currency afterwards.
    if "currency" in fields and fields["currency"] != customer.currency and customer.credit_ledger.exists():
        raise InvalidOperation(gettext("A customer with credits keeps its currency."), code="currency_locked")
    for name, value in fields.items():
        setattr(customer, name, value)
    customer.full_clean(exclude=["user"])
    customer.save()
    return customer


# ------------------------------------------------------------------------- API idempotency keys


@dataclass(frozen=True)
class IdempotencyClaim:
    record: ApiIdempotencyKey
    # True: this request holds the key and must run; False: answer record's stored response.
    fresh: bool


def idempotency_key_claim(*, key: str, method: str, path: str, request_hash: str, customer_id: int | None = None,
                          user_id: int | None = None, now: datetime | None = None) -> IdempotencyClaim:
    """Claim an Idempotency-Key in a short transaction of its own, before the request runs.

    Insert-first: the unique constraint lets one request in. Another request with the key gets the
    stored response once there is one, a 409 while the first is still in progress (it is not made to
    wait: a lock held while the first request calls a payment provider would stall it and every
    retry), and takes the key over when the first left an expired claim behind (it crashed). A key
    reused for another request is a 409.
    """
    if not key or len(key) > 255:
        raise InvalidOperation(gettext("The Idempotency-Key header must be 1 to 255 characters."),
                               code="invalid_idempotency_key")
    if customer_id is None and user_id is None:
        raise InvalidOperation(gettext("An idempotency key needs an owner."), code="idempotency_key_owner_missing")
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.API_IDEMPOTENCY_LEASE_SECONDS)
    owner = {"customer_id": customer_id} if customer_id is not None else {"customer_id": None, "user_id": user_id}
    record = ApiIdempotencyKey(**owner, key=key, request_method=method, request_path=path[:500],
                               request_hash=request_hash, locked_until=lease)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record.save()
            return IdempotencyClaim(record=record, fresh=True)
        except IntegrityError:
            pass
        existing = ApiIdempotencyKey.objects.select_for_update().get(**owner, key=key)
        if (existing.request_method, existing.request_path, existing.request_hash) != (method, path[:500],
                                                                                        request_hash):
            raise IdempotencyConflict(
                gettext("This Idempotency-Key was already used for a different request; send a new key."),
                extra={"idempotency_key": key, "first_request": f"{existing.request_method} {existing.request_path}"},
            )
        if existing.response_status is not None:
            return IdempotencyClaim(record=existing, fresh=False)
        if existing.locked_until is not None and existing.locked_until > now:
            raise IdempotencyConflict(
                gettext("A request with this Idempotency-Key is still in progress; retry after it has answered."),
                code="idempotency_request_in_progress",
                extra={"idempotency_key": key, "retry_after": max(int((existing.locked_until - now).total_seconds()),
                                                                  1)},
            )
        existing.locked_until = lease
        existing.save(update_fields=["locked_until"])
        return IdempotencyClaim(record=existing, fresh=True)


def _own_claim(record: ApiIdempotencyKey):
    """The key's row while this request's claim still holds it (not taken over after the lease)."""
    return ApiIdempotencyKey.objects.filter(pk=record.pk, response_status__isnull=True,
                                            locked_until=record.locked_until)


def idempotency_key_record_response(*, record: ApiIdempotencyKey, status: int, body) -> ApiIdempotencyKey:
    """Store the answer retries replay, ending the claim (one UPDATE, its own transaction). An answer may
    echo what the client sent (a field name it made up): stored with what jsonb refuses replaced."""
    body = json_storable(body)
    _own_claim(record).update(response_status=status, response_body=body, locked_until=None)
    record.response_status, record.response_body, record.locked_until = status, body, None
    return record


def idempotency_key_release(*, record: ApiIdempotencyKey) -> None:
    """Forget a claim whose request failed without an answer (5xx, crash): a retry runs again."""
    _own_claim(record).delete()


def idempotency_keys_purge(*, older_than: timedelta = timedelta(hours=24), now: datetime | None = None) -> int:
    """Forget keys older than `older_than` (never less than the 24 hours clients are promised)."""
    if older_than < timedelta(hours=24):
        raise InvalidOperation(gettext("Idempotency keys are kept at least 24 hours."), code="retention_too_short")
    cutoff = (now or timezone.now()) - older_than
    deleted, _ = ApiIdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
