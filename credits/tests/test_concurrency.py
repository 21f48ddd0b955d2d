"""Concurrent credit writers against real PostgreSQL connections (one per thread)."""

import threading
from functools import partial

import pytest
from django.db import close_old_connections, connection
from django.db.models import Sum

from billing_project.tests.threads import run_threads
from core.audit import Actor
from core.exceptions import InsufficientCredits
from core.tests.jobs_support import jobs_queued
from credits.emails import CREDITS_LOW_TASK
from credits.models import CreditLedgerEntry, CreditSource, LedgerKind
from credits.selectors import credit_balance_get, credit_balance_mismatches
from credits.services import credit_debit, credit_grant
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor.system("test")


def run_in_threads(count, work):
    """Run work(i) in `count` threads released together; return {i: result or exception}."""
    barrier = threading.Barrier(count)
    results = {}

    def target(i):
        try:
            close_old_connections()
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # collected, and asserted on by the test
            results[i] = exc
        finally:
            connection.close()

    threads = run_threads([partial(target, i) for i in range(count)], join_timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_debit_never_overdraws_under_concurrency():
    customer = CustomerFactory()
    # Two grants so the debits also race over which grant they take from.
    credit_grant(customer=customer, amount=40, source=CreditSource.PROMOTION, actor=ACTOR, priority=0)
    credit_grant(customer=customer, amount=35, source=CreditSource.PURCHASE, actor=ACTOR)

    results = run_in_threads(20, lambda i: credit_debit(customer=customer, amount=10, actor=ACTOR,
                                                        reason=f"thread {i}"))

    succeeded = [r for r in results.values() if not isinstance(r, Exception)]
    refused = [r for r in results.values() if isinstance(r, Exception)]
    assert len(results) == 20
    assert len(succeeded) == 7
    assert len(refused) == 13
    assert all(isinstance(r, InsufficientCredits) for r in refused)
    assert credit_balance_get(customer=customer) == 5
    ledger = CreditLedgerEntry.objects.filter(customer=customer)
    assert ledger.aggregate(s=Sum("amount"))["s"] == 5
    assert ledger.filter(kind=LedgerKind.DEBIT).count() == 7
    assert min(ledger.values_list("balance_after", flat=True)) >= 0
    # Each debit saw the balance the previous one left: the balances after are all distinct.
    assert sorted(w.balance for w in succeeded) == [5, 15, 25, 35, 45, 55, 65]
    assert credit_balance_mismatches() == []


def test_concurrent_identical_idempotency_keys_write_one_ledger_row():
    customer = CustomerFactory()
    credit_grant(customer=customer, amount=100, source=CreditSource.PURCHASE, actor=ACTOR)

    results = run_in_threads(10, lambda i: credit_debit(customer=customer, amount=3, actor=ACTOR,
                                                        idempotency_key="request-42"))

    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert len({r.entry.pk for r in results.values()}) == 1
    assert sorted(r.replayed for r in results.values()) == [False] + [True] * 9
    assert CreditLedgerEntry.objects.filter(customer=customer, idempotency_key="request-42").count() == 1
    assert credit_balance_get(customer=customer) == 97
    assert credit_balance_mismatches() == []


def test_concurrent_first_grants_of_a_new_customer_both_land():
    customer = CustomerFactory()

    results = run_in_threads(8, lambda i: credit_grant(customer=customer, amount=i + 1,
                                                       source=CreditSource.ADJUSTMENT, actor=ACTOR))

    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert credit_balance_get(customer=customer) == sum(range(1, 9))
    assert credit_balance_mismatches() == []


def test_eight_threads_on_distinct_customers_and_one_hot_customer_never_overdraw():
    """The benchmark's load (bench/credit_debits.py): 8 clients at once, first each on a customer of its
    own, then all on one customer whose credits run out midway. Pairs of threads send the same
    idempotency keys, so replays race with first writes too."""
    threads, debits = 8, 30
    own = [CustomerFactory() for _ in range(threads)]
    for customer in own:
        credit_grant(customer=customer, amount=debits, source=CreditSource.PURCHASE, actor=ACTOR)
    hot = CustomerFactory()
    credit_grant(customer=hot, amount=50, source=CreditSource.PROMOTION, actor=ACTOR, priority=0)
    credit_grant(customer=hot, amount=60, source=CreditSource.PURCHASE, actor=ACTOR)

    def debit_many(customer, key_prefix):
        outcomes = []
        for n in range(debits):
            try:
                outcomes.append(credit_debit(customer=customer, amount=1, actor=ACTOR,
                                             idempotency_key=f"{key_prefix}-{n}"))
            except InsufficientCredits as refused:
                outcomes.append(refused)
        return outcomes

    distinct = run_in_threads(threads, lambda i: debit_many(own[i], f"own-{i}"))
    # Threads i and i + 4 share their keys: 4 x 30 = 120 distinct debits wanted, 110 credits there.
    shared = run_in_threads(threads, lambda i: debit_many(hot, f"hot-{i % 4}"))

    assert not [r for r in [*distinct.values(), *shared.values()] if not isinstance(r, list)]
    assert all(credit_balance_get(customer=customer) == 0 for customer in own)
    hot_writes = [w for outcomes in shared.values() for w in outcomes if not isinstance(w, Exception)]
    hot_debits = CreditLedgerEntry.objects.filter(customer=hot, kind=LedgerKind.DEBIT)
    assert hot_debits.count() == 110
    assert hot_debits.values("idempotency_key").distinct().count() == 110
    assert {w.entry.pk for w in hot_writes} == set(hot_debits.values_list("pk", flat=True))
    assert sum(1 for w in hot_writes if not w.replayed) == 110
    assert credit_balance_get(customer=hot) == 0
    assert sorted(hot_debits.values_list("balance_after", flat=True)) == list(range(110))
    # The promotion (priority 0) was spent before the purchase was touched.
    first_purchase = hot_debits.filter(allocations__grant__source=CreditSource.PURCHASE).order_by("id").first()
    assert not hot_debits.filter(id__gt=first_purchase.pk, allocations__grant__source=CreditSource.PROMOTION).exists()
    assert credit_balance_mismatches() == []


def test_eight_threads_crossing_the_low_credit_threshold_together_defer_one_email(settings):
    """Debits on their own (autocommit) that would cross the threshold are held back by the statement and
    redone in a transaction with their email job; under 8 racing threads exactly one debit crosses, and
    exactly that one defers the email, in its own transaction."""
    settings.CREDITS_LOW_THRESHOLD = 100
    customer = CustomerFactory()
    credit_grant(customer=customer, amount=140, source=CreditSource.PURCHASE, actor=ACTOR)

    results = run_in_threads(8, lambda i: [credit_debit(customer=customer, amount=5, actor=ACTOR,
                                                        idempotency_key=f"low-{i}-{n}") for n in range(3)])

    assert not [r for r in results.values() if isinstance(r, Exception)]
    crossing = CreditLedgerEntry.objects.get(customer=customer, kind=LedgerKind.DEBIT, balance_after__lt=100,
                                             balance_after__gte=95)
    assert [job.args for job in jobs_queued(task_name=CREDITS_LOW_TASK)] == [{"ledger_entry_id": crossing.pk}]
    assert credit_balance_get(customer=customer) == 140 - 8 * 3 * 5
    assert credit_balance_mismatches() == []
