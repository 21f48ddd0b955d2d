"""The database refuses credit rows that must never exist."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from credits.models import CreditAllocation, CreditBalance, CreditGrant, CreditLedgerEntry, CreditSource, LedgerKind
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def refused(build):
    with pytest.raises(IntegrityError), transaction.atomic():
        build()


def grant(customer, **fields):
    values = dict(customer=customer, amount=100, remaining=100, source=CreditSource.PURCHASE,
                  effective_at=timezone.now())
    values.update(fields)
    return CreditGrant.objects.create(**values)


def entry(customer, **fields):
    values = dict(customer=customer, kind=LedgerKind.GRANT, amount=10, balance_after=10)
    values.update(fields)
    return CreditLedgerEntry.objects.create(**values)


@pytest.mark.parametrize("fields", [
    {"amount": 0, "remaining": 0},
    {"amount": -10, "remaining": 0},
    {"remaining": -1},
    {"amount": 100, "remaining": 101},
    {"source": "gift"},
    {"expires_at": "effective"},
])
def test_grant_refuses_impossible_amounts_sources_and_expiry(fields):
    customer = CustomerFactory()
    now = timezone.now()
    if fields.get("expires_at") == "effective":
        fields = {"effective_at": now, "expires_at": now - timedelta(seconds=1)}

    refused(lambda: grant(customer, **fields))


def test_grant_remaining_cannot_be_raised_above_its_amount_by_raw_update():
    row = grant(CustomerFactory(), amount=50, remaining=50)

    refused(lambda: CreditGrant.objects.filter(pk=row.pk).update(remaining=51))


def test_balance_can_never_be_negative():
    customer = CustomerFactory()
    CreditBalance.objects.create(customer=customer, balance=5)

    refused(lambda: CreditBalance.objects.filter(customer=customer).update(balance=-1))


@pytest.mark.parametrize("fields", [
    {"balance_after": -1},
    {"kind": "bonus"},
    {"kind": LedgerKind.GRANT, "amount": -10},
    {"kind": LedgerKind.REFUND, "amount": 0},
    {"kind": LedgerKind.DEBIT, "amount": 10},
    {"kind": LedgerKind.EXPIRY, "amount": 5},
])
def test_ledger_entry_refuses_negative_balances_bad_kinds_and_wrong_signs(fields):
    customer = CustomerFactory()

    refused(lambda: entry(customer, **fields))


def test_adjustments_may_go_either_way():
    customer = CustomerFactory()

    entry(customer, kind=LedgerKind.ADJUSTMENT, amount=5, balance_after=5)
    entry(customer, kind=LedgerKind.ADJUSTMENT, amount=-5, balance_after=0)

    stored = CreditLedgerEntry.objects.filter(customer=customer).order_by("pk")
    assert list(stored.values_list("kind", "amount", "balance_after")) == [
        (LedgerKind.ADJUSTMENT, 5, 5), (LedgerKind.ADJUSTMENT, -5, 0)]


def test_idempotency_key_is_unique_per_customer_only():
    first, second = CustomerFactory(), CustomerFactory()
    entry(first, idempotency_key="k1")
    entry(first, idempotency_key=None)
    entry(first, idempotency_key=None)

    refused(lambda: entry(first, idempotency_key="k1"))
    entry(second, idempotency_key="k1")


def test_allocation_of_nothing_is_refused():
    customer = CustomerFactory()
    row = grant(customer)
    ledger = entry(customer, grant=row)

    refused(lambda: CreditAllocation.objects.create(entry=ledger, grant=row, amount=0))
