import pytest

from core.audit import Actor
from credits.models import CreditBalance, CreditGrant, CreditLedgerEntry, CreditSource
from credits.selectors import credit_balance_get, credit_balance_mismatches, credit_grant_list, credit_ledger_list
from credits.services import credit_debit, credit_grant
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


def test_balance_of_a_customer_without_credits_is_zero():
    assert credit_balance_get(customer=CustomerFactory()) == 0


def test_lists_are_scoped_to_the_customer():
    mine, theirs = CustomerFactory(), CustomerFactory()
    credit_grant(customer=mine, amount=5, source=CreditSource.PURCHASE, actor=ACTOR)
    credit_grant(customer=theirs, amount=7, source=CreditSource.PURCHASE, actor=ACTOR)

    assert [e.amount for e in credit_ledger_list(customer=mine)] == [5]
    assert [g.amount for g in credit_grant_list(customer=mine)] == [5]
    assert credit_ledger_list().count() == 2


def test_mismatches_find_a_tampered_balance_grant_or_ledger():
    customer = CustomerFactory()
    credit_grant(customer=customer, amount=50, source=CreditSource.PURCHASE, actor=ACTOR)
    credit_debit(customer=customer, amount=20, actor=ACTOR)
    assert credit_balance_mismatches() == []

    CreditBalance.objects.filter(customer=customer).update(balance=31)
    CreditGrant.objects.filter(customer=customer).update(remaining=29)

    assert credit_balance_mismatches() == [
        {"kind": "credit_balance", "customer_id": customer.pk, "stored": 31, "ledger": 30},
        {"kind": "credit_grant", "grant_id": CreditGrant.objects.get().pk, "customer_id": customer.pk,
         "stored": 29, "ledger": 30},
    ]


def test_mismatches_find_ledger_rows_without_a_balance_row():
    customer = CustomerFactory()
    CreditLedgerEntry.objects.create(customer=customer, kind="adjustment", amount=9, balance_after=9)

    assert credit_balance_mismatches() == [
        {"kind": "credit_balance", "customer_id": customer.pk, "stored": 0, "ledger": 9}]
