from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from core.audit import Actor
from core.exceptions import IdempotencyConflict, InsufficientCredits, InvalidOperation
from credits.models import CreditAllocation, CreditGrant, CreditLedgerEntry, CreditSource, LedgerKind
from credits.selectors import credit_balance_get, credit_balance_mismatches, credit_customers_with_grants_due
from credits.services import (
    GrantSpec,
    credit_balances_lock,
    credit_debit,
    credit_debit_reverse,
    credit_grant,
    credit_grants_bulk,
    credit_grants_expire,
    credit_grants_expire_batch,
    credit_plan_refill,
    credit_refill_key,
)
from subscriptions.tests.factories import CustomerFactory, PlanFactory, StaffUserFactory, SubscriptionFactory

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


NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
ACTOR = Actor.system("test")


def give(customer, amount, *, source=CreditSource.PURCHASE, priority=100, effective_at=None, expires_at=None,
         key=None):
    return CreditGrant.objects.get(pk=credit_grant(
        customer=customer, amount=amount, source=source, actor=ACTOR, priority=priority,
        effective_at=effective_at or NOW - timedelta(days=10), expires_at=expires_at, idempotency_key=key,
    ).entry.grant_id)


def remaining(*grants):
    return [CreditGrant.objects.get(pk=g.pk).remaining for g in grants]


def assert_ledger_consistent(customer):
    ledger = CreditLedgerEntry.objects.filter(customer=customer)
    assert credit_balance_get(customer=customer) == (ledger.aggregate(s=Sum("amount"))["s"] or 0)
    assert credit_balance_mismatches() == []


# ------------------------------------------------------------------------------------------ grant


def test_grant_writes_a_grant_a_ledger_row_and_an_allocation():
    staff = StaffUserFactory()
    customer = CustomerFactory()

    write = credit_grant(customer=customer, amount=250, source=CreditSource.PROMOTION, actor=Actor.of_user(staff),
                         reason="launch promo", priority=0, effective_at=NOW, expires_at=NOW + timedelta(days=30))

    assert not write.replayed
    assert write.balance == 250
    entry = write.entry
    assert (entry.kind, entry.amount, entry.balance_after, entry.reason) == (LedgerKind.GRANT, 250, 250, "launch promo")
    assert (entry.actor, entry.actor_label) == (staff, staff.username)
    grant = entry.grant
    assert (grant.amount, grant.remaining, grant.priority, grant.source) == (250, 250, 0, CreditSource.PROMOTION)
    assert list(CreditAllocation.objects.values_list("grant_id", "amount")) == [(grant.pk, 250)]
    assert_ledger_consistent(customer)


@pytest.mark.parametrize(("fields", "code"), [
    ({"amount": 0}, "invalid_amount"),
    ({"amount": -5}, "invalid_amount"),
    ({"source": "gift"}, "invalid_source"),
    ({"expires_at": NOW}, "invalid_expiry"),
])
def test_grant_refuses_bad_input_and_writes_nothing(fields, code):
    customer = CustomerFactory()
    values = dict(customer=customer, amount=10, source=CreditSource.PURCHASE, actor=ACTOR, effective_at=NOW)
    values.update(fields)

    with pytest.raises(InvalidOperation) as refused:
        credit_grant(**values)

    assert refused.value.code == code
    assert not CreditLedgerEntry.objects.exists()
    assert not CreditGrant.objects.exists()


def test_a_grant_that_would_take_the_balance_past_a_bigint_is_refused_and_writes_nothing():
    customer = CustomerFactory()
    credit_grant(customer=customer, amount=2**63 - 2, source=CreditSource.PURCHASE, actor=ACTOR)

    with pytest.raises(InvalidOperation) as refused:
        credit_grant(customer=customer, amount=2, source=CreditSource.PURCHASE, actor=ACTOR)

    assert refused.value.code == "balance_limit"
    assert CreditLedgerEntry.objects.count() == CreditGrant.objects.count() == 1
    assert credit_balance_get(customer=customer) == 2**63 - 2


def test_grant_replay_with_the_same_key_writes_nothing():
    customer = CustomerFactory()
    first = credit_grant(customer=customer, amount=100, source=CreditSource.PURCHASE, actor=ACTOR,
                         idempotency_key="order-1")

    again = credit_grant(customer=customer, amount=100, source=CreditSource.PURCHASE, actor=ACTOR,
                         idempotency_key="order-1")

    assert again.replayed
    assert again.entry.pk == first.entry.pk
    assert CreditGrant.objects.count() == 1
    assert credit_balance_get(customer=customer) == 100


def test_grant_with_a_used_key_and_another_amount_is_a_conflict():
    customer = CustomerFactory()
    credit_grant(customer=customer, amount=100, source=CreditSource.PURCHASE, actor=ACTOR, idempotency_key="order-1")

    with pytest.raises(IdempotencyConflict):
        credit_grant(customer=customer, amount=200, source=CreditSource.PURCHASE, actor=ACTOR,
                     idempotency_key="order-1")
    with pytest.raises(IdempotencyConflict):
        credit_debit(customer=customer, amount=100, actor=ACTOR, idempotency_key="order-1")

    assert credit_balance_get(customer=customer) == 100
    assert CreditLedgerEntry.objects.count() == 1


# ------------------------------------------------------------------------------------------ debit


def test_debit_takes_priority_then_earliest_expiry_then_oldest():
    customer = CustomerFactory()
    oldest_no_expiry = give(customer, 10)
    newer_no_expiry = give(customer, 10)
    late_expiry = give(customer, 10, expires_at=NOW + timedelta(days=60))
    early_expiry = give(customer, 10, expires_at=NOW + timedelta(days=5))
    promo = give(customer, 10, priority=0, expires_at=NOW + timedelta(days=90))

    credit_debit(customer=customer, amount=35, actor=ACTOR, now=NOW)

    assert remaining(promo, early_expiry, late_expiry, oldest_no_expiry, newer_no_expiry) == [0, 0, 0, 5, 10]
    debit = CreditLedgerEntry.objects.get(kind=LedgerKind.DEBIT)
    assert dict(debit.allocations.values_list("grant_id", "amount")) == {
        promo.pk: -10, early_expiry.pk: -10, late_expiry.pk: -10, oldest_no_expiry.pk: -5}
    assert (debit.amount, debit.balance_after) == (-35, 15)
    assert_ledger_consistent(customer)


def test_debit_never_overdraws_and_changes_nothing_when_short():
    customer = CustomerFactory()
    grant = give(customer, 30)

    with pytest.raises(InsufficientCredits) as short:
        credit_debit(customer=customer, amount=31, actor=ACTOR, now=NOW)

    assert short.value.http_status == 402
    assert short.value.extra == {"balance": 30, "required": 31}
    assert remaining(grant) == [30]
    assert CreditLedgerEntry.objects.filter(kind=LedgerKind.DEBIT).count() == 0
    assert credit_balance_get(customer=customer) == 30


def test_debit_of_nothing_is_refused():
    customer = CustomerFactory()
    give(customer, 5)

    with pytest.raises(InvalidOperation):
        credit_debit(customer=customer, amount=0, actor=ACTOR)


def test_debit_expires_due_grants_first_and_does_not_spend_them():
    customer = CustomerFactory()
    expired = give(customer, 40, expires_at=NOW - timedelta(days=1))
    fresh = give(customer, 20)

    write = credit_debit(customer=customer, amount=15, actor=ACTOR, now=NOW)

    assert remaining(expired, fresh) == [0, 5]
    expiry = CreditLedgerEntry.objects.get(kind=LedgerKind.EXPIRY)
    assert (expiry.amount, expiry.grant_id, expiry.actor_label) == (-40, expired.pk, "system:credit-expiry")
    assert CreditGrant.objects.get(pk=expired.pk).expired_at == NOW
    assert write.balance == 5
    assert_ledger_consistent(customer)


def test_an_expired_grant_does_not_count_towards_what_is_available():
    customer = CustomerFactory()
    give(customer, 40, expires_at=NOW - timedelta(days=1))
    give(customer, 10)

    with pytest.raises(InsufficientCredits) as short:
        credit_debit(customer=customer, amount=20, actor=ACTOR, now=NOW)

    # The refused debit rolled back its expiry row too; the expiry is written by the next write.
    assert short.value.extra["balance"] == 10
    assert not CreditLedgerEntry.objects.filter(kind=LedgerKind.EXPIRY).exists()


def test_grants_not_yet_effective_are_not_spent():
    customer = CustomerFactory()
    give(customer, 50, effective_at=NOW + timedelta(days=1))

    with pytest.raises(InsufficientCredits):
        credit_debit(customer=customer, amount=1, actor=ACTOR, now=NOW)


def test_debit_replay_returns_the_first_debit_and_takes_nothing_more():
    customer = CustomerFactory()
    give(customer, 10)
    first = credit_debit(customer=customer, amount=4, actor=ACTOR, idempotency_key="call-1", now=NOW)

    again = credit_debit(customer=customer, amount=4, actor=ACTOR, idempotency_key="call-1", now=NOW)

    assert again.replayed and again.entry.pk == first.entry.pk
    assert credit_balance_get(customer=customer) == 6


def test_debit_replay_is_answered_even_when_the_balance_is_now_short():
    customer = CustomerFactory()
    give(customer, 4)
    credit_debit(customer=customer, amount=4, actor=ACTOR, idempotency_key="call-1", now=NOW)

    assert credit_debit(customer=customer, amount=4, actor=ACTOR, idempotency_key="call-1", now=NOW).replayed


# ------------------------------------------------------------------------------------------ reversal


def test_reversal_gives_credits_back_to_the_grants_they_came_from():
    customer = CustomerFactory()
    first, second = give(customer, 10), give(customer, 10)
    debit = credit_debit(customer=customer, amount=15, actor=ACTOR, now=NOW).entry

    write = credit_debit_reverse(entry=debit, actor=ACTOR, reason="job failed", now=NOW)

    assert remaining(first, second) == [10, 10]
    assert (write.entry.kind, write.entry.amount, write.balance, write.entry.reason) == (
        LedgerKind.REFUND, 15, 20, "job failed")
    assert dict(write.entry.allocations.values_list("grant_id", "amount")) == {first.pk: 10, second.pk: 5}
    assert_ledger_consistent(customer)


def test_reversal_twice_returns_the_first_reversal():
    customer = CustomerFactory()
    give(customer, 10)
    debit = credit_debit(customer=customer, amount=5, actor=ACTOR, now=NOW).entry
    first = credit_debit_reverse(entry=debit, actor=ACTOR, now=NOW)

    again = credit_debit_reverse(entry=debit, actor=ACTOR, now=NOW)

    assert again.replayed and again.entry.pk == first.entry.pk
    assert credit_balance_get(customer=customer) == 10


def test_reversal_skips_grants_that_expired_since():
    customer = CustomerFactory()
    short_lived = give(customer, 10, priority=0, expires_at=NOW + timedelta(days=1))
    lasting = give(customer, 10)
    debit = credit_debit(customer=customer, amount=15, actor=ACTOR, now=NOW).entry

    write = credit_debit_reverse(entry=debit, actor=ACTOR, now=NOW + timedelta(days=2))

    assert write.entry.amount == 5
    assert remaining(short_lived, lasting) == [0, 10]
    assert credit_balance_get(customer=customer) == 10
    assert_ledger_consistent(customer)


def test_reversal_does_not_revive_a_fully_spent_grant_that_has_expired_since():
    customer = CustomerFactory()
    grant = give(customer, 10, expires_at=NOW + timedelta(days=1))
    debit = credit_debit(customer=customer, amount=10, actor=ACTOR, now=NOW).entry

    with pytest.raises(InvalidOperation) as refused:
        credit_debit_reverse(entry=debit, actor=ACTOR, now=NOW + timedelta(days=2))

    assert refused.value.code == "nothing_to_return"
    assert remaining(grant) == [0]
    assert credit_balance_get(customer=customer) == 0


def test_only_a_debit_can_be_reversed():
    customer = CustomerFactory()
    grant_entry = credit_grant(customer=customer, amount=5, source=CreditSource.PURCHASE, actor=ACTOR).entry

    with pytest.raises(InvalidOperation) as refused:
        credit_debit_reverse(entry=grant_entry, actor=ACTOR)

    assert refused.value.code == "not_a_debit"


# ------------------------------------------------------------------------------------------ expiry and refill


def test_expire_writes_one_row_per_due_grant_and_runs_once():
    customer = CustomerFactory()
    due = give(customer, 7, expires_at=NOW - timedelta(hours=1))
    later = give(customer, 9, expires_at=NOW + timedelta(days=1))
    actor = Actor.system("expiry-cron")

    entries = credit_grants_expire(customer=customer, actor=actor, now=NOW)
    again = credit_grants_expire(customer=customer, actor=actor, now=NOW)

    assert [(e.amount, e.grant_id, e.balance_after, e.actor_label) for e in entries] == [
        (-7, due.pk, 9, "system:expiry-cron")]
    assert again == []
    assert remaining(due, later) == [0, 9]
    assert_ledger_consistent(customer)


def test_plan_refill_grants_once_per_period_and_expires_at_period_end():
    plan = PlanFactory(credits_per_period=100, credits_rollover=False)
    subscription = SubscriptionFactory(plan=plan)

    first = credit_plan_refill(subscription=subscription, actor=ACTOR)
    again = credit_plan_refill(subscription=subscription, actor=ACTOR)

    assert not first.replayed and again.replayed
    grant = first.entry.grant
    assert (grant.amount, grant.source, grant.priority) == (100, CreditSource.PLAN_REFILL, 50)
    assert (grant.effective_at, grant.expires_at) == (subscription.current_period_start,
                                                      subscription.current_period_end)
    assert credit_balance_get(customer=subscription.customer) == 100


def test_plan_refill_rolls_over_and_skips_plans_without_credits():
    rollover = SubscriptionFactory(plan=PlanFactory(credits_per_period=5, credits_rollover=True))
    none = SubscriptionFactory(plan=PlanFactory(credits_per_period=0))

    assert credit_plan_refill(subscription=rollover, actor=ACTOR).entry.grant.expires_at is None
    assert credit_plan_refill(subscription=none, actor=ACTOR) is None


def test_balances_are_locked_and_created_in_primary_key_order():
    customers = [CustomerFactory() for _ in range(3)]

    rows = credit_balances_lock(customer_ids=[customers[2].pk, customers[0].pk, customers[2].pk])

    assert list(rows) == [customers[0].pk, customers[2].pk]
    assert all(row.balance == 0 for row in rows.values())


def test_debit_queries_do_not_grow_with_the_number_of_grants():
    few, many = CustomerFactory(), CustomerFactory()
    for _ in range(2):
        give(few, 1)
    for _ in range(40):
        give(many, 1)

    with CaptureQueriesContext(connection) as spanning_two:
        credit_debit(customer=few, amount=2, actor=ACTOR, now=NOW)
    with CaptureQueriesContext(connection) as spanning_forty:
        credit_debit(customer=many, amount=40, actor=ACTOR, now=NOW)

    assert len(spanning_forty.captured_queries) == len(spanning_two.captured_queries)
    assert credit_balance_get(customer=many) == 0
