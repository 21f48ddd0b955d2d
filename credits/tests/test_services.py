from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_project.audit import Actor
from credits.models import CreditGrant, CreditLedgerEntry, CreditSource, LedgerKind
from credits.selectors import credit_balance_get, credit_balance_mismatches, credit_customers_with_grants_due
from credits.services import (
    GrantSpec,
    credit_debit,
    credit_grant,
    credit_grants_bulk,
    credit_grants_expire_batch,
    credit_plan_refill,
    credit_refill_key,
)
from subscriptions.tests.factories import CustomerFactory, SubscriptionFactory

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ACTOR = Actor.system("test")

pytestmark = pytest.mark.django_db


def _customers(n):
    return [CustomerFactory(user=None) for _ in range(n)]


def test_bulk_grants_match_single_grants_and_skip_used_idempotency_keys():
    customers = _customers(3)
    specs = [GrantSpec(customer_id=c.pk, amount=50, effective_at=NOW, expires_at=NOW + timedelta(days=30),
                       idempotency_key="refill:x", reason="refill") for c in customers]
    assert credit_grants_bulk(specs=specs, source=CreditSource.PLAN_REFILL, actor=ACTOR, priority=50) == 3
    assert credit_grants_bulk(specs=specs, source=CreditSource.PLAN_REFILL, actor=ACTOR, priority=50) == 0
    for customer in customers:
        assert credit_balance_get(customer=customer) == 50
        entry = CreditLedgerEntry.objects.get(customer=customer)
        assert (entry.kind, entry.amount, entry.balance_after, entry.actor_label) == ("grant", 50, 50, "system:test")
        assert entry.grant.remaining == 50 and entry.allocations.get().amount == 50
    assert credit_balance_mismatches() == []


def test_bulk_refill_shares_its_idempotency_key_with_credit_plan_refill():
    sub = SubscriptionFactory(customer=CustomerFactory(user=None))
    credit_plan_refill(subscription=sub, actor=ACTOR)
    key = credit_refill_key(subscription_id=sub.pk, period_start=sub.current_period_start)
    spec = GrantSpec(customer_id=sub.customer_id, amount=sub.plan.credits_per_period,
                     effective_at=sub.current_period_start, expires_at=None, idempotency_key=key, reason="refill")
    assert credit_grants_bulk(specs=[spec], source=CreditSource.PLAN_REFILL, actor=ACTOR) == 0
    assert credit_balance_get(customer=sub.customer) == sub.plan.credits_per_period


def test_expire_batch_writes_expiry_rows_for_what_is_left_and_keeps_the_ledger_consistent():
    customer = CustomerFactory(user=None)
    credit_grant(customer=customer, amount=100, source=CreditSource.PROMOTION, actor=ACTOR, effective_at=NOW,
                 expires_at=NOW + timedelta(days=1))
    credit_grant(customer=customer, amount=40, source=CreditSource.PURCHASE, actor=ACTOR, effective_at=NOW)
    credit_debit(customer=customer, amount=30, actor=ACTOR, now=NOW + timedelta(hours=1))
    assert credit_customers_with_grants_due(now=NOW + timedelta(hours=2)) == []
    assert credit_customers_with_grants_due(now=NOW + timedelta(days=1)) == [customer.pk]
    assert credit_grants_expire_batch(now=NOW + timedelta(days=1), actor=ACTOR, customer_ids=[customer.pk]) == 1
    # Listed again (a second run, or a stale list): the due condition is read again under the lock.
    assert credit_grants_expire_batch(now=NOW + timedelta(days=1), actor=ACTOR, customer_ids=[customer.pk]) == 0
    expiry = CreditLedgerEntry.objects.get(customer=customer, kind=LedgerKind.EXPIRY)
    assert expiry.amount == -70 and expiry.balance_after == 40 and expiry.idempotency_key.startswith("expiry:")
    assert credit_balance_get(customer=customer) == 40
    assert CreditGrant.objects.get(source=CreditSource.PROMOTION).expired_at == NOW + timedelta(days=1)
    assert credit_balance_mismatches() == []


def test_expire_batch_query_count_does_not_grow_with_customers():
    queries = {}
    for n in (2, 25):
        for customer in _customers(n):
            credit_grant(customer=customer, amount=10, source=CreditSource.PROMOTION, actor=ACTOR, effective_at=NOW,
                         expires_at=NOW + timedelta(days=n))
        with CaptureQueriesContext(connection) as context:
            ids = credit_customers_with_grants_due(now=NOW + timedelta(days=n))
            assert credit_grants_expire_batch(now=NOW + timedelta(days=n), actor=ACTOR, customer_ids=ids) == n
        queries[n] = len(context)
    assert queries[2] == queries[25]


def test_verify_names_a_grant_whose_remaining_disagrees_with_its_allocations():
    customer = CustomerFactory(user=None)
    write = credit_grant(customer=customer, amount=10, source=CreditSource.PROMOTION, actor=ACTOR)
    CreditGrant.objects.filter(pk=write.entry.grant_id).update(remaining=3)
    kinds = {m["kind"] for m in credit_balance_mismatches()}
    assert kinds == {"credit_grant"}
