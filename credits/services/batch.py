"""Batched writes to prepaid credits for the billing run, which touches thousands of customers per batch.
They keep the locking rules of `credits.services.ledger` (balance rows first, in primary-key order) with a
constant number of queries per batch instead of per customer."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import F
from django.utils import timezone

from core.audit import Actor
from core.bulk import AUDIT_FIELDS, array_of, audit_values, ids_reserve, pg_array, rows_copy
from credits.models import (
    DEFAULT_GRANT_PRIORITY,
    PLAN_REFILL_PRIORITY,
    CreditAllocation,
    CreditBalance,
    CreditGrant,
    CreditLedgerEntry,
    CreditSource,
    LedgerKind,
)
from credits.rollups import credit_ledger_days_add, ledger_column
from credits.webhooks import credits_granted_webhook_emit_many
from subscriptions.models import Plan


def credit_refill_key(*, subscription_id: int, period_start: datetime) -> str:
    """The idempotency key of a period's plan refill; the billing run and `credit_plan_refill` share it."""
    return f"refill:{subscription_id}:{period_start.isoformat()}"




@dataclass(frozen=True)
class GrantSpec:
    customer_id: int
    amount: int
    effective_at: datetime
    expires_at: datetime | None
    idempotency_key: str
    reason: str


def _balances_add(*, deltas: dict[int, int]) -> dict[int, int]:
    """Add `deltas` to these customers' balance rows (created if missing) in one statement and return the
    balances before. The upsert locks the rows in the order given, which is primary-key order, so this is
    `credit_balances_lock` plus the balance update for a whole batch, without a second write per row."""
    ids = sorted(deltas)
    if connection.vendor == "sqlite":
        return _sqlite_balances_add(ids=ids, deltas=deltas)
    table = CreditBalance._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS b (customer_id, balance, updated_at) "
            "SELECT v.customer_id, v.delta, now() FROM unnest(%s::bigint[], %s::bigint[]) AS v(customer_id, delta) "
            "ORDER BY v.customer_id "
            "ON CONFLICT (customer_id) DO UPDATE SET balance = b.balance + EXCLUDED.balance, updated_at = now() "
            "RETURNING b.customer_id, b.balance",
            [pg_array(ids), pg_array(deltas[i] for i in ids)],
        )
        return {customer_id: balance - deltas[customer_id] for customer_id, balance in cursor.fetchall()}


def _sqlite_balances_add(*, ids: list[int], deltas: dict[int, int]) -> dict[int, int]:
    """The embedded default's path: SQLite has one writer at a time, so read-then-write is safe."""
    before = dict(CreditBalance.objects.filter(customer_id__in=ids).values_list("customer_id", "balance"))
    now = timezone.now()
    for customer_id in ids:
        if customer_id in before:
            CreditBalance.objects.filter(customer_id=customer_id).update(balance=F("balance") + deltas[customer_id],
                                                                          updated_at=now)
        else:
            CreditBalance.objects.create(customer_id=customer_id, balance=deltas[customer_id])
    return {customer_id: before.get(customer_id, 0) for customer_id in ids}


def _balances_write(*, balances: dict[int, int]) -> None:
    if not balances:
        return
    if connection.vendor == "sqlite":
        now = timezone.now()
        for customer_id, balance in balances.items():
            CreditBalance.objects.filter(customer_id=customer_id).update(balance=balance, updated_at=now)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CreditBalance._meta.db_table} AS b SET balance = v.balance, updated_at = now() "
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(customer_id, balance) WHERE b.customer_id = v.customer_id",
            [pg_array(balances), pg_array(balances.values())],
        )


_GRANT_FIELDS = ("id", "customer", "amount", "remaining", "priority", "source", "effective_at", "expires_at",
                 "description", "created_at")
_ENTRY_FIELDS = ("id", *AUDIT_FIELDS, "customer", "kind", "amount", "balance_after", "grant", "idempotency_key")
_ALLOCATION_FIELDS = ("entry", "grant", "amount")


def _ledger_copy(*, entries: list[tuple[int, str, int, int, int, str, str]], actor: Actor, column: str) -> None:
    """Ledger rows (customer, kind, amount, balance_after, grant, idempotency key, reason), each with the
    allocation row that moves its grant by the same amount, added to the credits report's days (`column`:
    the report column of every row of the call)."""
    ids = ids_reserve(model=CreditLedgerEntry, count=len(entries))
    now = timezone.now()
    rows_copy(model=CreditLedgerEntry, fields=_ENTRY_FIELDS, rows=(
        (pk, *audit_values(actor=actor, reason=reason, now=now), customer_id, kind, amount, balance_after, grant_id,
         key) for pk, (customer_id, kind, amount, balance_after, grant_id, key, reason) in zip(ids, entries,
                                                                                               strict=True)))
    rows_copy(model=CreditAllocation, fields=_ALLOCATION_FIELDS,
              rows=((pk, entry[4], entry[2]) for pk, entry in zip(ids, entries, strict=True)))
    credit_ledger_days_add(rows=((entry[0], now, column, entry[2]) for entry in entries))


def credit_refill_spec(*, subscription_id: int, customer_id: int, plan: Plan, period_start: datetime,
                       period_end: datetime) -> GrantSpec | None:
    """What a plan refills for one period (None when it refills nothing): the one definition the billing
    run, resuming and `credit_plan_refill` share. Unused credits expire with the period unless the plan
    rolls them over."""
    if plan.credits_per_period <= 0:
        return None
    return GrantSpec(customer_id=customer_id, amount=plan.credits_per_period, effective_at=period_start,
                     expires_at=None if plan.credits_rollover else period_end,
                     idempotency_key=credit_refill_key(subscription_id=subscription_id, period_start=period_start),
                     reason=f"{plan.name} credits for the period from {period_start:%Y-%m-%d}")


def credit_refills_bulk(*, specs: list[GrantSpec], actor: Actor) -> int:
    """Plan refills for many subscriptions at once, at the refill priority; see `credit_grants_bulk`."""
    return credit_grants_bulk(specs=specs, source=CreditSource.PLAN_REFILL, actor=actor,
                              priority=PLAN_REFILL_PRIORITY)


def credit_grants_bulk(*, specs: list[GrantSpec], source: str, actor: Actor,
                       priority: int = DEFAULT_GRANT_PRIORITY) -> int:
    """Grant many customers credits at once (inside the caller's transaction); a spec whose idempotency
    key was already used is skipped. Returns how many grants were written."""
    if not specs:
        return 0
    # The idempotency keys are checked before the balance rows are locked: two runs never grant the same
    # subscription period concurrently, because each holds that subscription's row lock.
    used = set(CreditLedgerEntry.objects.filter(customer_id__in=array_of({s.customer_id for s in specs}),
                                                idempotency_key__in=array_of([s.idempotency_key for s in specs],
                                                                             "text"))
               .values_list("customer_id", "idempotency_key"))
    todo = []
    for spec in specs:
        if (spec.customer_id, spec.idempotency_key) not in used:
            used.add((spec.customer_id, spec.idempotency_key))
            todo.append(spec)
    if not todo:
        return 0
    deltas: dict[int, int] = {}
    for spec in todo:
        deltas[spec.customer_id] = deltas.get(spec.customer_id, 0) + spec.amount
    balances = _balances_add(deltas=deltas)
    grant_ids = ids_reserve(model=CreditGrant, count=len(todo))
    now = timezone.now()
    rows_copy(model=CreditGrant, fields=_GRANT_FIELDS, rows=(
        (pk, s.customer_id, s.amount, s.amount, priority, source, s.effective_at, s.expires_at, s.reason[:200], now)
        for pk, s in zip(grant_ids, todo, strict=True)))
    entries = []
    for grant_id, spec in zip(grant_ids, todo, strict=True):
        balances[spec.customer_id] += spec.amount
        entries.append((spec.customer_id, LedgerKind.GRANT, spec.amount, balances[spec.customer_id], grant_id,
                        spec.idempotency_key, spec.reason))
    _ledger_copy(entries=entries, actor=actor,
                 column=ledger_column(kind=LedgerKind.GRANT, grant_source=source))
    credits_granted_webhook_emit_many(customer_ids=list(deltas), idempotency_keys=[s.idempotency_key for s in todo])
    return len(todo)


def credit_grants_expire_batch(*, now: datetime, actor: Actor, customer_ids: list[int]) -> int:
    """Expire the due grants of these customers (inside the caller's transaction); the caller takes the
    ids from `credits.selectors.credit_customers_with_grants_due`, a snapshot cut into batches.

    The customers' balance rows are claimed with SKIP LOCKED in primary-key order, so concurrent runs
    share the work and a customer busy with a debit is left for the next run; the due condition is read
    again under the lock, so a customer another run already handled costs nothing. Returns the number of
    grants expired."""
    due = CreditGrant.objects.filter(spendable=True, expires_at__lte=now)
    balances = {row.customer_id: row.balance for row in
                CreditBalance.objects.select_for_update(skip_locked=True).only("customer_id", "balance")
                .filter(customer_id__in=array_of(customer_ids)).order_by("customer_id")}
    if not balances:
        return 0
    grants = list(due.filter(customer_id__in=array_of(balances)).order_by("customer_id", "id")
                  .values_list("id", "customer_id", "remaining"))
    entries = []
    for grant_id, customer_id, lost in grants:
        balances[customer_id] -= lost
        entries.append((customer_id, LedgerKind.EXPIRY, -lost, balances[customer_id], grant_id, f"expiry:{grant_id}",
                        f"grant #{grant_id} expired"))
    CreditGrant.objects.filter(pk__in=array_of(g[0] for g in grants)).update(remaining=0, expired_at=now)
    _ledger_copy(entries=entries, actor=actor, column="expired")
    _balances_write(balances={g[1]: balances[g[1]] for g in grants})
    return len(grants)
