"""Pieces shared by the steps of the billing run."""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from core.audit import Actor

# Reported after each batch: (step name, items handled in that batch).
ProgressCallback = Callable[[str, int], None]

RUN_ACTOR = Actor.system("billing-run")


def batch_size_default() -> int:
    return settings.BILLING_RUN_BATCH_SIZE


@dataclass
class StepCounts:
    """What one step did; the run's summary adds them up."""

    counts: dict[str, int] = field(default_factory=dict)
    # The highest primary key a renewal batch claimed: the next batch starts after it.
    last_pk: int = 0

    def add(self, key: str, value: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + value


def batch_transaction_tune() -> None:
    """Let this batch's COMMIT return before its WAL reaches the disk (BILLING_RUN_ASYNC_COMMIT).

    A batch is all-or-nothing and idempotent, so if the database server crashes (not the run: a killed
    run loses nothing committed) the last few batches it acknowledged are lost whole, never in part,
    and the next run redoes them; a charge already made is found again through its idempotency key,
    which counts the same attempt. On a disk that needs ~50 ms per fsync this is most of a batch's
    time. SQLite (the embedded default) has no such setting and commits its own way."""
    if settings.BILLING_RUN_ASYNC_COMMIT and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def deferred_checks_run() -> None:
    """Run the transaction's deferred constraint checks now instead of at COMMIT, and defer later ones again.

    Django declares every foreign key DEFERRABLE INITIALLY DEFERRED, so a batch's COMMIT checks each
    foreign key of each row it wrote (about a dozen per subscription renewed). Issuing runs them here,
    just before it locks the year's invoice number counter, so the counter is not held through them and a
    concurrent batch's numbering waits only for two statements and a COMMIT. Any violation surfaces here,
    before a number is taken. Deferral is switched back on for the rest of the transaction (a dry run's
    later batches keep writing children before parents). SQLite checks its own way at COMMIT."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED")
