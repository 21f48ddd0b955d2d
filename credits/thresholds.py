"""What a debit checks about the balance it leaves, inside its own transaction (so nothing is announced
for rolled-back work): CREDITS_LOW_THRESHOLD (`credits.low`, credits/emails.py) and the balance levels the
apps above credits watch, such as usage's credit-balance thresholds (usage/thresholds.py).

Credits sits below usage in the layers, so it cannot call usage; usage registers its check here once, when
its app is ready (usage/apps.py), and every debit path calls `credit_balance_crossings_check`, which costs
no query unless a level was crossed (each watcher decides that from the balance before and after and
what it keeps in memory)."""

from collections.abc import Callable
from dataclasses import dataclass

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
_watchers: list[BalanceWatcher] = []


def credit_balance_watcher_register(watcher: BalanceWatcher) -> None:
    """Called once per process by an app above credits (its AppConfig.ready); registering twice is a no-op."""
    if watcher not in _watchers:
        _watchers.append(watcher)


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
