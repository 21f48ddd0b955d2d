"""Writes to prepaid credits, one customer at a time. Each one locks the customer's CreditBalance row
first, appends ledger and allocation rows, and moves the balance; nothing here edits or deletes a ledger
row. A grant creates the balance row when the customer has none; every other write finds it there."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from core.audit import Actor
from core.exceptions import IdempotencyConflict, InvalidOperation
from core.safe_input import BIGINT_MAX
from credits.live import credit_entry_created
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
from credits.services.batch import credit_refill_spec
from credits.webhooks import credit_granted_webhook_emit
from subscriptions.models import Customer, Subscription


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


def credit_replay(*, customer: Customer, idempotency_key: str | None, kind: str, amount: int) -> CreditWrite | None:
    """The earlier write with this idempotency key, if any (409 when it was another kind or amount)."""
    if not idempotency_key:
        return None
    entry = CreditLedgerEntry.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
    if entry is None:
        return None
    if entry.kind != kind or abs(entry.amount) != abs(amount):
        raise IdempotencyConflict(gettext("This idempotency key was already used for a different credit operation."),
                                  extra={"idempotency_key": idempotency_key})
    return CreditWrite(entry=entry, replayed=True)


def credit_entry_append(*, balance: CreditBalance, kind: str, amount: int, actor: Actor, reason: str,
                        idempotency_key: str | None, grant: CreditGrant | None,
                        allocations: list[tuple[CreditGrant, int]]) -> CreditLedgerEntry:
    """Move the locked balance by `amount` and append its ledger row and allocation rows."""
    balance.balance += amount
    balance.save(update_fields=["balance", "updated_at"])
    entry = CreditLedgerEntry(customer_id=balance.customer_id, kind=kind, amount=amount,
                              balance_after=balance.balance, grant=grant, reason=reason[:500],
                              idempotency_key=idempotency_key or None)
    entry.stamp(actor)
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError as exc:  # the unique key raced past credit_replay: same answer as a replay
        raise IdempotencyConflict(gettext("This idempotency key is already in use.")) from exc
    credit_ledger_days_add(rows=[(entry.customer_id, entry.created_at,
                                  ledger_column(kind=kind, grant_source=grant.source if grant else None), amount)])
    CreditAllocation.objects.bulk_create(
        [CreditAllocation(entry=entry, grant=g, amount=a) for g, a in allocations if a]
    )
    credit_entry_created(entry=entry)
    return entry


def credit_grants_expire_due(*, balance: CreditBalance, now: datetime, actor: Actor) -> list[CreditLedgerEntry]:
    """Write expiry rows for this customer's grants whose time has come (balance row already locked)."""
    entries = []
    due = CreditGrant.objects.filter(customer_id=balance.customer_id, spendable=True,
                                     expires_at__lte=now).order_by("id")
    for grant in due:
        lost = grant.remaining
        grant.remaining = 0
        grant.expired_at = now
        grant.save(update_fields=["remaining", "expired_at"])
        entries.append(credit_entry_append(balance=balance, kind=LedgerKind.EXPIRY, amount=-lost, actor=actor,
                                           reason=f"grant #{grant.pk} expired", idempotency_key=f"expiry:{grant.pk}",
                                           grant=grant, allocations=[(grant, -lost)]))
    return entries


@transaction.atomic
def credit_grant(*, customer: Customer, amount: int, source: str, actor: Actor, reason: str = "",
                 priority: int = DEFAULT_GRANT_PRIORITY, effective_at: datetime | None = None,
                 expires_at: datetime | None = None, idempotency_key: str | None = None,
                 description: str = "") -> CreditWrite:
    if amount <= 0:
        raise InvalidOperation(gettext("A grant must add a positive number of credits."), code="invalid_amount")
    if source not in CreditSource.values:
        raise InvalidOperation(gettext("Unknown credit source %(source)r.") % {"source": source}, code="invalid_source")
    effective_at = effective_at or timezone.now()
    if expires_at is not None and expires_at <= effective_at:
        raise InvalidOperation(gettext("A grant must expire after it takes effect."), code="invalid_expiry")
    balance = credit_balance_lock(customer=customer)
    replay = credit_replay(customer=customer, idempotency_key=idempotency_key, kind=LedgerKind.GRANT, amount=amount)
    if replay:
        return replay
    if balance.balance + amount > BIGINT_MAX:
        raise InvalidOperation(gettext("This grant would take the balance past the largest number of credits a balance "
                               "can hold."), code="balance_limit")
    grant = CreditGrant.objects.create(customer=customer, amount=amount, remaining=amount, priority=priority,
                                       source=source, effective_at=effective_at, expires_at=expires_at,
                                       description=description or reason[:200])
    entry = credit_entry_append(balance=balance, kind=LedgerKind.GRANT, amount=amount, actor=actor,
                                reason=reason or source, idempotency_key=idempotency_key, grant=grant,
                                allocations=[(grant, amount)])
    credit_granted_webhook_emit(entry=entry)
    return CreditWrite(entry=entry, replayed=False)


def credit_grants_spendable(*, customer_id: int, now: datetime):
    """Grants a debit may take from, in the order it takes them: priority, earliest expiry, oldest."""
    return (CreditGrant.objects
            .filter(customer_id=customer_id, spendable=True, effective_at__lte=now)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by("priority", "expires_at", "created_at", "id"))


@transaction.atomic
def credit_debit_reverse(*, entry: CreditLedgerEntry, actor: Actor, reason: str = "",
                         now: datetime | None = None) -> CreditWrite:
    """Give back the credits of a debit to the grants they came from (those not expired since)."""
    if entry.kind != LedgerKind.DEBIT:
        raise InvalidOperation(gettext("Only a debit can be reversed."), code="not_a_debit")
    now = now or timezone.now()
    customer = entry.customer
    balance = credit_balance_lock(customer=customer)
    key = f"reverse:{entry.pk}"
    existing = CreditLedgerEntry.objects.filter(customer=customer, idempotency_key=key).first()
    if existing:
        return CreditWrite(entry=existing, replayed=True)
    credit_grants_expire_due(balance=balance, now=now, actor=Actor.system("credit-expiry"))
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
        raise InvalidOperation(gettext("Every grant this debit used has expired; nothing can be returned."),
                               code="nothing_to_return")
    new_entry = credit_entry_append(balance=balance, kind=LedgerKind.REFUND, amount=returned, actor=actor,
                                    reason=reason or f"reversal of ledger entry #{entry.pk}", idempotency_key=key,
                                    grant=None, allocations=allocations)
    return CreditWrite(entry=new_entry, replayed=False)


@transaction.atomic
def credit_grants_expire(*, customer: Customer, actor: Actor, now: datetime | None = None) -> list[CreditLedgerEntry]:
    balance = credit_balance_lock(customer=customer)
    return credit_grants_expire_due(balance=balance, now=now or timezone.now(), actor=actor)


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



