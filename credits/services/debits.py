"""Debits of prepaid credits: the hot path of a product that charges credits per request.

On PostgreSQL a debit is one statement, `SELECT * FROM credits_debit(...)`, a PL/pgSQL function (migration
credits 0004, docs/decisions.md "A credit debit is one round trip") that locks the customer's balance row,
then checks the idempotency key, picks the grants in consumption order, takes from them, moves the balance
and appends the ledger and allocation rows. Called on its own (autocommit, as the API's debit is) that one
statement is the whole transaction: one round trip, no BEGIN or COMMIT; inside a caller's transaction it
adds one round trip and no savepoint. Grants due to expire take the general path, which writes their expiry
rows first; so does the embedded default (SQLite has no PL/pgSQL)."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from core.audit import Actor
from core.bulk import audit_values
from core.exceptions import InsufficientCredits, InvalidOperation
from credits.live import credit_entry_created
from credits.models import CreditBalance, CreditGrant, CreditLedgerEntry, LedgerKind
from credits.services.ledger import (
    CreditWrite,
    credit_entry_append,
    credit_grants_expire_due,
    credit_grants_spendable,
    credit_replay,
)
from credits.thresholds import credit_balance_crossings_check, credit_balance_watch_levels
from subscriptions.models import Customer

_DEBIT_SQL = ("SELECT * FROM credits_debit(%(customer)s::bigint, %(amount)s::bigint, %(key)s::varchar, "
              "%(now)s, %(created_at)s, %(actor)s::integer, %(actor_label)s::varchar, "
              "%(reason)s::varchar, %(kind)s::varchar, %(watch_levels)s::bigint[])")

_ENTRY_COLUMNS = ("id", "created_at", "actor_id", "actor_label", "reason", "customer_id", "kind", "amount",
                  "balance_after", "grant_id", "idempotency_key")


@dataclass(frozen=True)
class _Attempt:
    # The new ledger row, when the statement wrote it.
    entry: CreditLedgerEntry | None = None
    # The ledger row an earlier call wrote with this idempotency key.
    replay_id: int | None = None
    expiry_due: bool = False
    # The debit would cross a watched balance level and was held back (autocommit only): what the crossing
    # sets off must commit with it, so it is redone inside a transaction.
    level_crossed: bool = False
    available: int = 0


def credit_debit(*, customer: Customer, amount: int, actor: Actor, reason: str = "",
                 idempotency_key: str | None = None, now: datetime | None = None) -> CreditWrite:
    """Take `amount` credits, or raise InsufficientCredits and take nothing.

    Inside a caller's transaction no savepoint is made: the one statement writes everything or nothing,
    and a refusal is raised after it, so the caller's transaction stays usable."""
    if amount <= 0:
        raise InvalidOperation(gettext("A debit must take a positive number of credits."), code="invalid_amount")
    now = now or timezone.now()
    if connection.vendor != "postgresql":
        return _credit_debit_general(customer=customer, amount=amount, actor=actor, reason=reason,
                                     idempotency_key=idempotency_key, now=now)
    # In autocommit the statement is its own transaction, which cannot also hold what a debit crossing a watched
    # balance level sets off (credits/thresholds.py): such a debit is held back and redone in one.
    attempt = _debit_attempt(customer=customer, amount=amount, actor=actor, reason=reason,
                             idempotency_key=idempotency_key, now=now, hold_crossings=connection.get_autocommit())
    if attempt.level_crossed:
        with transaction.atomic(savepoint=False):
            attempt = _debit_attempt(customer=customer, amount=amount, actor=actor, reason=reason,
                                     idempotency_key=idempotency_key, now=now, hold_crossings=False)
            _debited(attempt=attempt, amount=amount)
    else:
        _debited(attempt=attempt, amount=amount)
    return _answer(attempt=attempt, customer=customer, amount=amount, actor=actor, reason=reason,
                   idempotency_key=idempotency_key, now=now)


def _debited(*, attempt: _Attempt, amount: int) -> None:
    """What a written debit sets off, in its transaction: the alerts of the levels it crossed (the "credits
    low" email job and webhook event, credit-balance thresholds) and, once it commits, the live event (at once
    in autocommit: it has committed)."""
    if attempt.entry is not None:
        credit_balance_crossings_check(balance_before=attempt.entry.balance_after + amount, entry=attempt.entry)
        credit_entry_created(entry=attempt.entry)


def _answer(*, attempt: _Attempt, customer: Customer, amount: int, actor: Actor, reason: str,
            idempotency_key: str | None, now: datetime) -> CreditWrite:
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
                   now: datetime, hold_crossings: bool) -> _Attempt:
    """The one statement (PostgreSQL). `hold_crossings`: write nothing if the debit crosses a watched balance
    level (the caller redoes it in a transaction)."""
    created_at, actor_id, actor_label, reason = audit_values(actor=actor, reason=reason, now=timezone.now())
    params = {"customer": customer.pk, "key": idempotency_key or None, "now": now, "amount": amount,
              "created_at": created_at, "actor": actor_id, "actor_label": actor_label, "reason": reason,
              "kind": LedgerKind.DEBIT.value,
              "watch_levels": credit_balance_watch_levels(customer_id=customer.pk) if hold_crossings else None}
    with connection.cursor() as cursor:
        cursor.execute(_DEBIT_SQL, params)
        entry_id, balance_after, replay_id, expiry_due, available, level_crossed = cursor.fetchone()
    if entry_id is None:
        return _Attempt(replay_id=replay_id, expiry_due=expiry_due, level_crossed=level_crossed and replay_id is None
                        and not expiry_due and available >= amount, available=available)
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
    credit_balance_crossings_check(balance_before=entry.balance_after + amount, entry=entry)
    return CreditWrite(entry=entry, replayed=False)
