"""Writes to prepaid credits. Each one locks the customer's CreditBalance row first, appends ledger
and allocation rows, and moves the balance; nothing here edits or deletes a ledger row."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.audit import Actor
from core.bulk import AUDIT_FIELDS, array_of, audit_values, ids_reserve, rows_copy
from core.exceptions import IdempotencyConflict, InsufficientCredits, InvalidOperation
from core.safe_input import BIGINT_MAX
from credits.emails import credits_low_check
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
from credits.webhooks import credit_granted_webhook_emit, credits_granted_webhook_emit_many
from subscriptions.models import Customer, Plan, Subscription


@dataclass(frozen=True)
class CreditWrite:
    entry: CreditLedgerEntry
    # True when the idempotency key had already been used: nothing was written this time.
    replayed: bool

    @property
    def balance(self) -> int:
        return self.entry.balance_after


def credit_balances_lock(*, customer_ids: list[int]) -> dict[int, CreditBalance]:
    """Lock (creating if needed) the balance rows of these customers, in primary-key order so two
    writers touching the same customers can never deadlock."""
    ids = sorted(set(customer_ids))
    CreditBalance.objects.bulk_create([CreditBalance(customer_id=i) for i in ids], ignore_conflicts=True)
    rows = CreditBalance.objects.select_for_update().filter(customer_id__in=ids).order_by("customer_id")
    return {row.customer_id: row for row in rows}


def credit_balance_lock(*, customer: Customer) -> CreditBalance:
    return credit_balances_lock(customer_ids=[customer.pk])[customer.pk]


def _replay(*, customer: Customer, idempotency_key: str | None, kind: str, amount: int) -> CreditWrite | None:
    if not idempotency_key:
        return None
    entry = CreditLedgerEntry.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
    if entry is None:
        return None
    if entry.kind != kind or abs(entry.amount) != abs(amount):
        raise IdempotencyConflict("This idempotency key was already used for a different credit operation.",
                                  extra={"idempotency_key": idempotency_key})
    return CreditWrite(entry=entry, replayed=True)


def _append(*, balance: CreditBalance, kind: str, amount: int, actor: Actor, reason: str,
            idempotency_key: str | None, grant: CreditGrant | None,
            allocations: list[tuple[CreditGrant, int]]) -> CreditLedgerEntry:
    balance.balance += amount
    balance.save(update_fields=["balance", "updated_at"])
    entry = CreditLedgerEntry(customer_id=balance.customer_id, kind=kind, amount=amount,
                              balance_after=balance.balance, grant=grant, reason=reason[:500],
                              idempotency_key=idempotency_key or None)
    entry.stamp(actor)
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError as exc:  # the unique key raced past _replay: same answer as a replay
        raise IdempotencyConflict("This idempotency key is already in use.") from exc
    CreditAllocation.objects.bulk_create(
        [CreditAllocation(entry=entry, grant=g, amount=a) for g, a in allocations if a]
    )
    return entry


def _expire_due(*, balance: CreditBalance, now: datetime, actor: Actor) -> list[CreditLedgerEntry]:
    """Write expiry rows for this customer's grants whose time has come (balance row already locked)."""
    entries = []
    due = CreditGrant.objects.filter(customer_id=balance.customer_id, remaining__gt=0,
                                     expires_at__lte=now).order_by("id")
    for grant in due:
        lost = grant.remaining
        grant.remaining = 0
        grant.expired_at = now
        grant.save(update_fields=["remaining", "expired_at"])
        entries.append(_append(balance=balance, kind=LedgerKind.EXPIRY, amount=-lost, actor=actor,
                               reason=f"grant #{grant.pk} expired", idempotency_key=f"expiry:{grant.pk}",
                               grant=grant, allocations=[(grant, -lost)]))
    return entries


@transaction.atomic
def credit_grant(*, customer: Customer, amount: int, source: str, actor: Actor, reason: str = "",
                 priority: int = DEFAULT_GRANT_PRIORITY, effective_at: datetime | None = None,
                 expires_at: datetime | None = None, idempotency_key: str | None = None,
                 description: str = "") -> CreditWrite:
    if amount <= 0:
        raise InvalidOperation("A grant must add a positive number of credits.", code="invalid_amount")
    if source not in CreditSource.values:
        raise InvalidOperation(f"Unknown credit source {source!r}.", code="invalid_source")
    effective_at = effective_at or timezone.now()
    if expires_at is not None and expires_at <= effective_at:
        raise InvalidOperation("A grant must expire after it takes effect.", code="invalid_expiry")
    balance = credit_balance_lock(customer=customer)
    replay = _replay(customer=customer, idempotency_key=idempotency_key, kind=LedgerKind.GRANT, amount=amount)
    if replay:
        return replay
    if balance.balance + amount > BIGINT_MAX:
        raise InvalidOperation("This grant would take the balance past the largest number of credits a balance "
                               "can hold.", code="balance_limit")
    grant = CreditGrant.objects.create(customer=customer, amount=amount, remaining=amount, priority=priority,
                                       source=source, effective_at=effective_at, expires_at=expires_at,
                                       description=description or reason[:200])
    entry = _append(balance=balance, kind=LedgerKind.GRANT, amount=amount, actor=actor, reason=reason or source,
                    idempotency_key=idempotency_key, grant=grant, allocations=[(grant, amount)])
    credit_granted_webhook_emit(entry=entry)
    return CreditWrite(entry=entry, replayed=False)


def _consumption_order(*, customer_id: int, now: datetime):
    """Grants a debit may take from, in the order it takes them: priority, earliest expiry, oldest."""
    return (CreditGrant.objects
            .filter(customer_id=customer_id, remaining__gt=0, effective_at__lte=now)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by("priority", "expires_at", "created_at", "id"))


@transaction.atomic
def credit_debit(*, customer: Customer, amount: int, actor: Actor, reason: str = "",
                 idempotency_key: str | None = None, now: datetime | None = None) -> CreditWrite:
    """Take `amount` credits, or raise InsufficientCredits and take nothing."""
    if amount <= 0:
        raise InvalidOperation("A debit must take a positive number of credits.", code="invalid_amount")
    now = now or timezone.now()
    balance = credit_balance_lock(customer=customer)
    replay = _replay(customer=customer, idempotency_key=idempotency_key, kind=LedgerKind.DEBIT, amount=amount)
    if replay:
        return replay
    _expire_due(balance=balance, now=now, actor=Actor.system("credit-expiry"))
    grants = list(_consumption_order(customer_id=customer.pk, now=now))
    available = sum(g.remaining for g in grants)
    if available < amount:
        raise InsufficientCredits(f"{amount} credits needed but only {available} available.",
                                  extra={"balance": available, "required": amount})
    allocations: list[tuple[CreditGrant, int]] = []
    left = amount
    for grant in grants:
        if left == 0:
            break
        take = min(grant.remaining, left)
        grant.remaining -= take
        left -= take
        allocations.append((grant, -take))
    CreditGrant.objects.bulk_update([g for g, _ in allocations], ["remaining"])
    entry = _append(balance=balance, kind=LedgerKind.DEBIT, amount=-amount, actor=actor, reason=reason,
                    idempotency_key=idempotency_key, grant=None, allocations=allocations)
    credits_low_check(balance_before=entry.balance_after + amount, entry=entry)
    return CreditWrite(entry=entry, replayed=False)


@transaction.atomic
def credit_debit_reverse(*, entry: CreditLedgerEntry, actor: Actor, reason: str = "",
                         now: datetime | None = None) -> CreditWrite:
    """Give back the credits of a debit to the grants they came from (those not expired since)."""
    if entry.kind != LedgerKind.DEBIT:
        raise InvalidOperation("Only a debit can be reversed.", code="not_a_debit")
    now = now or timezone.now()
    customer = entry.customer
    balance = credit_balance_lock(customer=customer)
    key = f"reverse:{entry.pk}"
    existing = CreditLedgerEntry.objects.filter(customer=customer, idempotency_key=key).first()
    if existing:
        return CreditWrite(entry=existing, replayed=True)
    _expire_due(balance=balance, now=now, actor=Actor.system("credit-expiry"))
    allocations = []
    for allocation in entry.allocations.select_related("grant").order_by("grant_id"):
        grant = CreditGrant.objects.select_for_update().get(pk=allocation.grant_id)
        # Past its expiry a grant keeps nothing, even one this debit emptied before it could be expired
        # (_expire_due only sees grants with credits left, so expired_at alone would miss it).
        if grant.expired_at is not None or (grant.expires_at is not None and grant.expires_at <= now):
            continue
        grant.remaining += -allocation.amount
        grant.save(update_fields=["remaining"])
        allocations.append((grant, -allocation.amount))
    returned = sum(a for _, a in allocations)
    if returned == 0:
        raise InvalidOperation("Every grant this debit used has expired; nothing can be returned.",
                               code="nothing_to_return")
    new_entry = _append(balance=balance, kind=LedgerKind.REFUND, amount=returned, actor=actor,
                        reason=reason or f"reversal of ledger entry #{entry.pk}", idempotency_key=key,
                        grant=None, allocations=allocations)
    return CreditWrite(entry=new_entry, replayed=False)


@transaction.atomic
def credit_grants_expire(*, customer: Customer, actor: Actor, now: datetime | None = None) -> list[CreditLedgerEntry]:
    balance = credit_balance_lock(customer=customer)
    return _expire_due(balance=balance, now=now or timezone.now(), actor=actor)


def credit_refill_key(*, subscription_id: int, period_start: datetime) -> str:
    """The idempotency key of a period's plan refill; the billing run and `credit_plan_refill` share it."""
    return f"refill:{subscription_id}:{period_start.isoformat()}"


def credit_plan_refill(*, subscription: Subscription, actor: Actor) -> CreditWrite | None:
    """Grant the plan's credits for the subscription's current period, once per period."""
    spec = credit_refill_spec(subscription_id=subscription.pk, customer_id=subscription.customer_id,
                              plan=subscription.plan, period_start=subscription.current_period_start,
                              period_end=subscription.current_period_end)
    if spec is None:
        return None
    return credit_grant(
        customer=subscription.customer, amount=spec.amount, source=CreditSource.PLAN_REFILL, actor=actor,
        priority=PLAN_REFILL_PRIORITY, effective_at=spec.effective_at, expires_at=spec.expires_at,
        reason=spec.reason, idempotency_key=spec.idempotency_key,
    )



# ------------------------------------------------------------------------------------ batched writes
# The billing run touches thousands of customers per batch; these keep the locking rules above (balance
# rows first, in primary-key order) with a constant number of queries per batch instead of per customer.


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
            [ids, [deltas[i] for i in ids]],
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
            [list(balances), list(balances.values())],
        )


_GRANT_FIELDS = ("id", "customer", "amount", "remaining", "priority", "source", "effective_at", "expires_at",
                 "description", "created_at")
_ENTRY_FIELDS = ("id", *AUDIT_FIELDS, "customer", "kind", "amount", "balance_after", "grant", "idempotency_key")
_ALLOCATION_FIELDS = ("entry", "grant", "amount")


def _ledger_copy(*, entries: list[tuple[int, str, int, int, int, str, str]], actor: Actor) -> None:
    """Ledger rows (customer, kind, amount, balance_after, grant, idempotency key, reason), each with the
    allocation row that moves its grant by the same amount."""
    ids = ids_reserve(model=CreditLedgerEntry, count=len(entries))
    now = timezone.now()
    rows_copy(model=CreditLedgerEntry, fields=_ENTRY_FIELDS, rows=(
        (pk, *audit_values(actor=actor, reason=reason, now=now), customer_id, kind, amount, balance_after, grant_id,
         key) for pk, (customer_id, kind, amount, balance_after, grant_id, key, reason) in zip(ids, entries,
                                                                                               strict=True)))
    rows_copy(model=CreditAllocation, fields=_ALLOCATION_FIELDS,
              rows=((pk, entry[4], entry[2]) for pk, entry in zip(ids, entries, strict=True)))


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
    _ledger_copy(entries=entries, actor=actor)
    credits_granted_webhook_emit_many(customer_ids=list(deltas), idempotency_keys=[s.idempotency_key for s in todo])
    return len(todo)


def credit_grants_expire_batch(*, now: datetime, actor: Actor, customer_ids: list[int]) -> int:
    """Expire the due grants of these customers (inside the caller's transaction); the caller takes the
    ids from `credits.selectors.credit_customers_with_grants_due`, a snapshot cut into batches.

    The customers' balance rows are claimed with SKIP LOCKED in primary-key order, so concurrent runs
    share the work and a customer busy with a debit is left for the next run; the due condition is read
    again under the lock, so a customer another run already handled costs nothing. Returns the number of
    grants expired."""
    due = CreditGrant.objects.filter(remaining__gt=0, expires_at__lte=now)
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
    _ledger_copy(entries=entries, actor=actor)
    _balances_write(balances={g[1]: balances[g[1]] for g in grants})
    return len(grants)
