"""What a debit checks about the balance it leaves, inside its own transaction (so nothing is announced
for rolled-back work): CREDITS_LOW_THRESHOLD (`credits.low`, credits/emails.py) and the balance levels the
apps above credits watch, such as usage's credit-balance thresholds (usage/thresholds.py).

Credits sits below usage in the layers, so it cannot call usage; usage registers its check here once, when
its app is ready (usage/apps.py), and every debit path calls `credit_balance_crossings_check`, which costs
no query unless a level was crossed (each watcher decides that from the balance before and after and
what it keeps in memory).

The one-statement debit (credits/services/debits.py) runs in autocommit when no transaction is open, and
then cannot hold what a crossing sets off: it is given `credit_balance_watch_levels`, every level whose
crossing matters, holds back a debit that would cross one, and the caller redoes it in a transaction."""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings

from credits.emails import credits_low_check
from credits.models import CreditLedgerEntry


@dataclass(frozen=True)
class BalanceMove:
    customer_id: int
    balance_before: int
    balance_after: int
    # The debit's ledger row (written, not committed yet).
    entry: CreditLedgerEntry


BalanceWatcher = Callable[[BalanceMove], None]
# The levels (whole credits or not) a customer's debits may cross for a watcher, from memory, never a query;
# a superset is harmless (the crossing debit is only redone in a transaction, where the watcher decides).
LevelsWatched = Callable[[int], Iterable[float]]
_watchers: list[BalanceWatcher] = []
_levels_watched: list[LevelsWatched] = []


def credit_balance_watcher_register(watcher: BalanceWatcher, *, levels: LevelsWatched) -> None:
    """Called once per process by an app above credits (its AppConfig.ready); registering twice is a no-op."""
    if watcher not in _watchers:
        _watchers.append(watcher)
        _levels_watched.append(levels)


def credit_balance_watch_levels(*, customer_id: int) -> list[int]:
    """Every integer level L such that a debit taking the balance from above L to L or below crosses
    something: CREDITS_LOW_THRESHOLD (crossed going from at or above it to below it, hence minus one) and
    each watcher's levels (crossed from above to at or below; balances are whole, so the floor of a level)."""
    levels = {settings.CREDITS_LOW_THRESHOLD - 1}
    for watched in _levels_watched:
        levels.update(math.floor(level) for level in watched(customer_id))
    return sorted(levels)


def credit_balance_crossings_check(*, balance_before: int, entry: CreditLedgerEntry) -> None:
    """After a debit wrote `entry`, in its transaction: every alert the move from `balance_before` to
    `entry.balance_after` crosses, written and announced once (committed with the debit or not at all)."""
    credits_low_check(balance_before=balance_before, entry=entry)
    if not _watchers:
        return
    move = BalanceMove(customer_id=entry.customer_id, balance_before=balance_before,
                       balance_after=entry.balance_after, entry=entry)
    for watcher in _watchers:
        watcher(move)
