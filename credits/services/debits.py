"""Debits of prepaid credits: the hot path of a product that charges credits per request.

On PostgreSQL a debit is two statements in one transaction (docs/decisions.md, "A credit debit is two
statements"): the customer's balance row is locked, then one data-modifying statement checks the
idempotency key, picks the grants in consumption order, takes from them, moves the balance and appends the
ledger and allocation rows. The second statement starts after the lock is held, so under READ COMMITTED
its snapshot sees every write of this customer that committed before and none that is still running
(every credit writer locks the balance row first). Grants due to expire take the general path, which
writes their expiry rows first; so does the embedded default (SQLite has no data-modifying CTE)."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from core.audit import Actor
from core.bulk import audit_values
from core.exceptions import InsufficientCredits, InvalidOperation
from credits.emails import credits_low_check
from credits.live import credit_entry_created
from credits.models import CreditAllocation, CreditBalance, CreditGrant, CreditLedgerEntry, LedgerKind
from credits.services.ledger import (
    CreditWrite,
    credit_entry_append,
    credit_grants_expire_due,
    credit_grants_spendable,
    credit_replay,
)
from subscriptions.models import Customer

_BALANCE = CreditBalance._meta.db_table
_GRANT = CreditGrant._meta.db_table
_LEDGER = CreditLedgerEntry._meta.db_table
_ALLOCATION = CreditAllocation._meta.db_table

_LOCK_SQL = f"SELECT 1 FROM {_BALANCE} WHERE customer_id = %(customer)s FOR UPDATE"

# `spendable` is every grant a debit may take from, in consumption order (priority, earliest expiry with
# no expiry last, oldest), with the credits the grants before it hold; a grant takes what those left
# uncovered. `go` is false for a replay, when a grant is due to expire (the general path writes that first)
# and when the grants cannot cover the amount: then nothing is written and the caller reads the answer.
_DEBIT_SQL = f"""
WITH replay AS (
    SELECT id FROM {_LEDGER} WHERE customer_id = %(customer)s AND idempotency_key = %(key)s
), expiry AS (
    SELECT EXISTS (SELECT 1 FROM {_GRANT} WHERE customer_id = %(customer)s AND remaining > 0
                   AND expires_at <= %(now)s) AS due
), spendable AS (
    SELECT id, remaining,
           (sum(remaining) OVER (ORDER BY priority, expires_at, created_at, id ROWS UNBOUNDED PRECEDING)
            - remaining)::bigint AS before,
           (sum(remaining) OVER ())::bigint AS available
    FROM {_GRANT}
    WHERE customer_id = %(customer)s AND remaining > 0 AND effective_at <= %(now)s
          AND (expires_at IS NULL OR expires_at > %(now)s)
), go AS (
    SELECT NOT EXISTS (SELECT 1 FROM replay) AND NOT (SELECT due FROM expiry)
           AND coalesce((SELECT max(available) FROM spendable), 0) >= %(amount)s AS ok
), taken AS (
    UPDATE {_GRANT} AS g SET remaining = g.remaining - least(s.remaining, %(amount)s - s.before)
    FROM spendable AS s, go
    WHERE go.ok AND g.id = s.id AND s.before < %(amount)s
    RETURNING g.id, least(s.remaining, %(amount)s - s.before) AS take
), balance AS (
    UPDATE {_BALANCE} SET balance = balance - %(amount)s, updated_at = %(created_at)s
    WHERE customer_id = %(customer)s AND (SELECT ok FROM go)
    RETURNING balance
), entry AS (
    INSERT INTO {_LEDGER} (created_at, actor_id, actor_label, reason, customer_id, kind, amount, balance_after,
                           grant_id, idempotency_key)
    SELECT %(created_at)s, %(actor)s, %(actor_label)s, %(reason)s, %(customer)s, %(kind)s, -%(amount)s,
           balance.balance, NULL, %(key)s
    FROM balance
    RETURNING id, balance_after
), allocation AS (
    INSERT INTO {_ALLOCATION} (entry_id, grant_id, amount) SELECT entry.id, taken.id, -taken.take FROM entry, taken
)
SELECT entry.id, entry.balance_after, (SELECT id FROM replay), (SELECT due FROM expiry),
       coalesce((SELECT max(available) FROM spendable), 0)
FROM (SELECT 1) AS one LEFT JOIN entry ON true
"""

_ENTRY_COLUMNS = ("id", "created_at", "actor_id", "actor_label", "reason", "customer_id", "kind", "amount",
                  "balance_after", "grant_id", "idempotency_key")


@dataclass(frozen=True)
class _Attempt:
    # The new ledger row, when the statement wrote it.
    entry: CreditLedgerEntry | None = None
    # The ledger row an earlier call wrote with this idempotency key.
    replay_id: int | None = None
    expiry_due: bool = False
    available: int = 0


def credit_debit(*, customer: Customer, amount: int, actor: Actor, reason: str = "",
                 idempotency_key: str | None = None, now: datetime | None = None) -> CreditWrite:
    """Take `amount` credits, or raise InsufficientCredits and take nothing.

    Inside a caller's transaction no savepoint is made: the two statements either write everything or
    nothing, and a refusal is raised after them, so the caller's transaction stays usable."""
    if amount <= 0:
        raise InvalidOperation(gettext("A debit must take a positive number of credits."), code="invalid_amount")
    now = now or timezone.now()
    if connection.vendor != "postgresql":
        return _credit_debit_general(customer=customer, amount=amount, actor=actor, reason=reason,
                                     idempotency_key=idempotency_key, now=now)
    with transaction.atomic(savepoint=False):
        attempt = _debit_attempt(customer=customer, amount=amount, actor=actor, reason=reason,
                                 idempotency_key=idempotency_key, now=now)
        if attempt.entry is not None:
            # In the debit's transaction: the email is deferred, and the entry announced, only if it commits.
            credits_low_check(balance_before=attempt.entry.balance_after + amount, entry=attempt.entry)
            credit_entry_created(entry=attempt.entry)
    if attempt.entry is not None:
        return CreditWrite(entry=attempt.entry, replayed=False)
    if attempt.replay_id is not None:
        return credit_replay(customer=customer, idempotency_key=idempotency_key, kind=LedgerKind.DEBIT, amount=amount)
    if attempt.expiry_due:
        return _credit_debit_general(customer=customer, amount=amount, actor=actor, reason=reason,
                                     idempotency_key=idempotency_key, now=now)
    raise InsufficientCredits(gettext("%(required)s credits needed but only %(available)s available.")
                              % {"required": amount, "available": attempt.available},
                              extra={"balance": attempt.available, "required": amount})


def _debit_attempt(*, customer: Customer, amount: int, actor: Actor, reason: str, idempotency_key: str | None,
                   now: datetime) -> _Attempt:
    """The lock and the one statement (PostgreSQL), inside the caller's transaction."""
    created_at, actor_id, actor_label, reason = audit_values(actor=actor, reason=reason, now=timezone.now())
    params = {"customer": customer.pk, "key": idempotency_key or None, "now": now, "amount": amount,
              "created_at": created_at, "actor": actor_id, "actor_label": actor_label, "reason": reason,
              "kind": LedgerKind.DEBIT.value}
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, params)
        if cursor.fetchone() is None:
            # No balance row: the customer was never granted anything, so nothing can be taken or replayed.
            return _Attempt()
        cursor.execute(_DEBIT_SQL, params)
        entry_id, balance_after, replay_id, expiry_due, available = cursor.fetchone()
    if entry_id is None:
        return _Attempt(replay_id=replay_id, expiry_due=expiry_due, available=available)
    entry = CreditLedgerEntry.from_db(connection.alias, _ENTRY_COLUMNS, (
        entry_id, created_at, actor_id, actor_label, reason, customer.pk, LedgerKind.DEBIT.value, -amount,
        balance_after, None, params["key"]))
    return _Attempt(entry=entry)


@transaction.atomic
def _credit_debit_general(*, customer: Customer, amount: int, actor: Actor, reason: str,
                          idempotency_key: str | None, now: datetime) -> CreditWrite:
    """Row by row through the ORM: expires the customer's due grants first, then takes from the rest."""
    balance = CreditBalance.objects.select_for_update().filter(customer_id=customer.pk).first()
    replay = credit_replay(customer=customer, idempotency_key=idempotency_key, kind=LedgerKind.DEBIT, amount=amount)
    if replay:
        return replay
    if balance is None:
        raise InsufficientCredits(gettext("%(required)s credits needed but only %(available)s available.")
                                  % {"required": amount, "available": 0},
                                  extra={"balance": 0, "required": amount})
    credit_grants_expire_due(balance=balance, now=now, actor=Actor.system("credit-expiry"))
    grants = list(credit_grants_spendable(customer_id=customer.pk, now=now))
    available = sum(g.remaining for g in grants)
    if available < amount:
        raise InsufficientCredits(gettext("%(required)s credits needed but only %(available)s available.")
                                  % {"required": amount, "available": available},
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
    entry = credit_entry_append(balance=balance, kind=LedgerKind.DEBIT, amount=-amount, actor=actor, reason=reason,
                                idempotency_key=idempotency_key, grant=None, allocations=allocations)
    credits_low_check(balance_before=entry.balance_after + amount, entry=entry)
    return CreditWrite(entry=entry, replayed=False)
