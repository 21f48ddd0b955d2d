"""Concurrent retries of one usage event against real PostgreSQL connections (one per thread)."""

import threading
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection

from billing_project.tests.threads import run_threads
from core.audit import Actor
from credits.models import CreditLedgerEntry, CreditSource, LedgerKind
from credits.selectors import credit_balance_get
from credits.services import credit_grant
from subscriptions.tests.factories import CustomerFactory
from usage.models import UsageEvent
from usage.services import usage_event_record
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
