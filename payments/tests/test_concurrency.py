"""Concurrent finalizations against real PostgreSQL connections (one per thread)."""

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest

from billing_project.tests.threads import race
from core.audit import Actor
from payments.models import InvoiceLineKind, InvoiceNumberSequence
from payments.services import LineSpec, invoice_create, invoice_finalize
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_finalizations_take_consecutive_numbers():
    customer = CustomerFactory()
    drafts = [invoice_create(customer=customer, lines=[LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="x",
                                                                unit_amount=Decimal(100))])
              for _ in range(12)]
    def finalize(draft):
        return invoice_finalize(invoice=draft, actor=Actor.system("test"), now=datetime(2025, 5, 1, tzinfo=UTC)).number

    outcome = race([partial(finalize, draft) for draft in drafts], join_timeout=60)
    numbers, errors = outcome.results, outcome.errors

    assert errors == []
    assert sorted(numbers) == [f"INV-2025-{n:06d}" for n in range(1, 13)]
    assert InvoiceNumberSequence.objects.get(year=2025).last_number == 12
