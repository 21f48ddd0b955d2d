"""Concurrent retries of one usage event against real PostgreSQL connections (one per thread)."""

import threading
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection

from billing_project.tests.threads import race, run_threads
from core.audit import Actor
from core.exceptions import InsufficientCredits
from credits.models import CreditLedgerEntry, CreditSource, LedgerKind
from credits.selectors import credit_balance_get, credit_balance_mismatches
from credits.services import credit_grant
from subscriptions.tests.factories import CustomerFactory
from usage.models import UsageEvent
from usage.services import UsageEventInput, usage_event_record, usage_events_record_batch
from usage.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_retries_of_one_event_store_it_once_and_debit_once():
    customer, meter = CustomerFactory(), MeterFactory(credits_per_unit=Decimal(5))
    credit_grant(customer=customer, amount=100, source=CreditSource.PURCHASE, actor=Actor.system("test"))
    barrier = threading.Barrier(8)
    results = []

    def record():
        try:
            close_old_connections()
            barrier.wait()
            results.append(usage_event_record(customer=customer, meter=meter, idempotency_key="evt-1",
                                              quantity=Decimal(2)))
        except Exception as exc:  # collected, and asserted on below
            results.append(exc)
        finally:
            connection.close()

    run_threads([record] * 8, join_timeout=60)

    assert not [r for r in results if isinstance(r, Exception)]
    assert sorted(r.created for r in results) == [False] * 7 + [True]
    assert len({r.event.pk for r in results}) == 1
    assert UsageEvent.objects.count() == 1
    assert CreditLedgerEntry.objects.filter(kind=LedgerKind.DEBIT).count() == 1
    assert credit_balance_get(customer=customer) == 90


def test_concurrent_batches_on_a_credit_meter_never_overdraw_and_store_only_what_was_paid_for():
    """bench/usage_ingest.py's credit run: batches of one customer on a meter that debits credits,
    sent at once. Each batch pays for its events in its own transaction; a batch the credits cannot
    cover stores nothing."""
    customer, meter = CustomerFactory(), MeterFactory(credits_per_unit=Decimal(1))
    credit_grant(customer=customer, amount=1000, source=CreditSource.PROMOTION, actor=Actor.system("test"),
                 priority=0)
    credit_grant(customer=customer, amount=1500, source=CreditSource.PURCHASE, actor=Actor.system("test"))

    def batch(number):
        events = [UsageEventInput(meter_code=meter.code, idempotency_key=f"b{number}-e{i}", quantity=Decimal(1))
                  for i in range(400)]
        return lambda: usage_events_record_batch(customer=customer, events=events)

    outcome = race([batch(number) for number in range(8)], join_timeout=60)

    # 8 x 400 credits wanted, 2,500 there: six batches fit, the other two are refused whole.
    assert len(outcome.results) == 6 and all(r.credits_debited == 400 for r in outcome.results)
    assert len(outcome.errors) == 2 and all(isinstance(e, InsufficientCredits) for e in outcome.errors)
    assert UsageEvent.objects.filter(customer=customer).count() == 2400
    assert CreditLedgerEntry.objects.filter(customer=customer, kind=LedgerKind.DEBIT).count() == 6
    assert credit_balance_get(customer=customer) == 100
    assert credit_balance_mismatches() == []
