"""Concurrent finalizations against real PostgreSQL connections (one per thread)."""

import threading
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest
from django.db import close_old_connections, connection

from billing_project.audit import Actor
from billing_project.tests.threads import run_threads
from payments.models import InvoiceLineKind, InvoiceNumberSequence
from payments.services import LineSpec, invoice_create, invoice_finalize
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_finalizations_take_consecutive_numbers():
    customer = CustomerFactory()
    drafts = [invoice_create(customer=customer, lines=[LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="x",
                                                                unit_amount=Decimal(100))])
              for _ in range(12)]
    barrier = threading.Barrier(len(drafts))
    numbers, errors = [], []

    def finalize(draft):
        try:
            close_old_connections()
            barrier.wait()
            numbers.append(invoice_finalize(invoice=draft, actor=Actor.system("test"),
                                            now=datetime(2025, 5, 1, tzinfo=UTC)).number)
        except Exception as exc:  # collected, and asserted on below
            errors.append(exc)
        finally:
            connection.close()

    run_threads([partial(finalize, draft) for draft in drafts], join_timeout=60)

    assert errors == []
    assert sorted(numbers) == [f"INV-2025-{n:06d}" for n in range(1, 13)]
    assert InvoiceNumberSequence.objects.get(year=2025).last_number == 12
