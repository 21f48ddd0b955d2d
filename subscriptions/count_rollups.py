"""Keeping the subscriptions-at-a-date rollups (subscriptions.count_models) true in the transaction of every
audit row that moves them.

The report's definition (docs/reports.md): a subscription's status at an instant is the `to_status` of its
newest audit row by then, its plan the `from_plan` of its first plan change after the instant, else its
plan today: the plan in force, since every plan change is written with the plan it leaves. So each call that
writes audit rows (`subscription_event_write`, `subscription_events_write_many`, all rows of one call at one
instant) moves a subscription from its (status, plan) before the call to its (status, plan) after it: -1 and
+1 at that instant, added to the instant's and the month's rows. Three statements per call, whatever the
number of subscriptions: the state before (one read), the two increments."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models import OuterRef, Subquery

from core.bulk import array_of
from core.increments import rows_increment
from subscriptions.count_models import SubscriptionCountChange, SubscriptionCountMonth
from subscriptions.models import Subscription, SubscriptionEvent, SubscriptionEventKind

# See SubscriptionCountChange.shard.
COUNT_SHARDS = 16

# {subscription id: (status then, or None before its first audit row; plan then)}
States = dict[int, tuple[str | None, int]]


@dataclass(frozen=True)
class AuditMove:
    """What an audit row says of a subscription's state: its `to_status` (empty: unchanged) and, for a
    plan change, the plans it leaves and takes."""

    subscription_id: int
    kind: str
    to_status: str = ""
    from_plan_id: int | None = None
    to_plan_id: int | None = None


def subscription_states_before(*, subscription_ids: Iterable[int]) -> States:
    """Each subscription's (status, plan) before the audit rows about to be written: the newest audit row's
    status, and the plan on the subscription row. One query (a backward step of sub_event_trail each)."""
    newest = (SubscriptionEvent.objects.filter(subscription=OuterRef("pk")).exclude(to_status="")
              .order_by("-created_at", "-id").values("to_status")[:1])
    return {pk: (status, plan_id) for pk, status, plan_id in
            Subscription.objects.filter(pk__in=array_of(set(subscription_ids)))
            .annotate(status_then=Subquery(newest)).values_list("pk", "status_then", "plan_id")}


def subscription_counts_move(*, before: States, moves: list[AuditMove], at: datetime) -> None:
    """Add the moves of one call's audit rows (in write order, all written at `at`) to the rollups."""
    before, states = dict(before), dict(before)
    for move in moves:  # the plan the call's first plan change leaves is the plan before it
        if move.kind == SubscriptionEventKind.PLAN_CHANGED and move.from_plan_id is not None:
            status, plan = before[move.subscription_id]
            if states[move.subscription_id] == (status, plan):
                states[move.subscription_id] = before[move.subscription_id] = (status, move.from_plan_id)
    for move in moves:
        status, plan = states[move.subscription_id]
        if move.kind == SubscriptionEventKind.PLAN_CHANGED and move.to_plan_id is not None:
            plan = move.to_plan_id
        states[move.subscription_id] = (move.to_status or status, plan)
    deltas: dict[tuple[str, int, int], int] = defaultdict(int)
    for pk, after in states.items():
        old = before[pk]
        if old == after:
            continue
        if old[0] is not None:
            deltas[(old[0], old[1], pk % COUNT_SHARDS)] -= 1
        if after[0] is not None:
            deltas[(after[0], after[1], pk % COUNT_SHARDS)] += 1
    subscription_count_deltas_add(deltas=deltas, at=at)


def subscription_count_deltas_add(*, deltas: dict[tuple[str, int, int], int], at: datetime) -> None:
    """{(status, plan id, shard): delta} added at the instant `at` and to its UTC month."""
    if not any(deltas.values()):
        return
    month = at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for model, instant in ((SubscriptionCountMonth, month), (SubscriptionCountChange, at)):
        # As the ORM stores it (SQLite keeps datetimes as UTC text).
        when = connection.ops.adapt_datetimefield_value(instant)
        rows_increment(table=model._meta.db_table,
                       keys=("month" if model is SubscriptionCountMonth else "at", "status", "plan_id", "shard"),
                       figures=("delta",),
                       deltas={(when, status, plan, shard): [n] for (status, plan, shard), n in deltas.items()})
