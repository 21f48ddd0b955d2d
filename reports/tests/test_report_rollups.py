"""The credits and subscriptions-at-a-date reports read rollups written by the services themselves: on
random histories written through those services (grants, purchases, debits on the one-statement path,
expiries one by one and in batches, reversals, batch grants; subscriptions created, activated, paused,
resumed, canceled now and at period end, moved by the batch transitions of the billing run, changing plan),
with the clock moved hours at a time, both equal their reference computed from every ledger and audit row
(reports/tests/rollup_reference.py) at instants inside days as well as at midnights, and `billing verify`
finds the rollups equal to their recomputation. The reference's plan rule ("from_plan of the first plan
change after, else today's plan") is thereby checked to equal the plan in force that the rollups track."""

import random
import threading
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from django.core.management import call_command
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from billing_project.tests.threads import run_threads
from core.audit import Actor
from core.exceptions import IllegalTransition, InsufficientCredits, InvalidOperation
from credits.models import CreditLedgerDay, CreditLedgerEntry, CreditSource, LedgerKind
from credits.rollup_rebuild import credit_day_mismatches
from credits.services import credit_debit, credit_debit_reverse, credit_grant, credit_grants_expire
from credits.services.batch import GrantSpec, credit_grants_bulk, credit_grants_expire_batch
from payments.billing.verify import billing_verify
from payments.services import subscription_change_plan
from reports.selectors import report_credits, report_subscriptions
from reports.tests.rollup_reference import report_credits_reference, report_subscriptions_reference
from subscriptions.count_rollup_rebuild import subscription_count_mismatches
from subscriptions.models import (
    Subscription,
    SubscriptionCountMonth,
    SubscriptionEvent,
    SubscriptionStatus,
)
from subscriptions.services import (
    StatusMove,
    customer_update,
    subscription_cancel,
    subscription_create,
    subscription_lock,
    subscription_pause,
    subscription_resume,
    subscription_transition,
    subscription_transition_many,
)
from subscriptions.tests.factories import CustomerFactory, PlanFactory

pytestmark = pytest.mark.django_db
S = SubscriptionStatus
BASE = datetime(2025, 3, 30, 7, 15, tzinfo=UTC)
ACTOR = Actor.system("test:report-rollups")


class Clock:
    """`timezone.now()` for every service and `auto_now_add` column, moved forward by the test."""

    def __init__(self, monkeypatch):
        self.now = BASE
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def advance(self, rng: random.Random) -> None:
        self.now += timedelta(hours=rng.randrange(1, 30), minutes=rng.randrange(60), microseconds=rng.randrange(10**6))


def _credit_step(rng: random.Random, customers: list, step: int, now: datetime) -> None:
    customer = rng.choice(customers)
    op = rng.choice(["grant", "purchase", "debit", "debit", "debit", "expire", "reverse", "bulk", "expire_batch"])
    try:
        if op in ("grant", "purchase"):
            credit_grant(customer=customer, amount=rng.randint(1, 60), actor=ACTOR,
                         source=CreditSource.PURCHASE if op == "purchase" else CreditSource.PROMOTION,
                         expires_at=now + timedelta(days=rng.randint(1, 6)) if rng.random() < 0.5 else None)
        elif op == "debit":
            credit_debit(customer=customer, amount=rng.randint(1, 25), actor=ACTOR, now=now)
        elif op == "expire":
            credit_grants_expire(customer=customer, actor=ACTOR, now=now)
        elif op == "reverse":
            debit = CreditLedgerEntry.objects.filter(customer=customer, kind=LedgerKind.DEBIT).order_by("?").first()
            if debit is not None:
                credit_debit_reverse(entry=debit, actor=ACTOR, now=now)
        elif op == "bulk":
            with transaction.atomic():
                specs = [GrantSpec(customer_id=c.pk, amount=rng.randint(1, 30), effective_at=now, reason="bulk",
                                   expires_at=now + timedelta(days=2), idempotency_key=f"b{step}:{c.pk}")
                         for c in customers]
                credit_grants_bulk(specs=specs, source=rng.choice([CreditSource.PURCHASE, CreditSource.PLAN_REFILL]),
                                   actor=ACTOR)
        else:
            with transaction.atomic():
                credit_grants_expire_batch(now=now, actor=ACTOR, customer_ids=[c.pk for c in customers])
    except (InsufficientCredits, InvalidOperation):
        pass


def _credit_ranges(now: datetime) -> list[tuple[datetime, datetime, str | None]]:
    midnight = BASE.replace(hour=0, minute=0, second=0, microsecond=0)
    inside = BASE + timedelta(days=3, hours=5, minutes=7)
    return [(midnight, midnight + timedelta(days=120), None),  # whole days
            (inside, now - timedelta(hours=20), None),  # inside a day at both ends
            (inside, inside + timedelta(hours=9), "USD"),  # one day, one currency
            (midnight + timedelta(days=40), now + timedelta(days=1), "EUR"),
            (BASE - timedelta(days=2), BASE + timedelta(days=33, seconds=1), None)]


@pytest.mark.parametrize("seed", [5, 11, 2027])
def test_credits_report_equals_the_ledger_through_every_writer(seed, monkeypatch):
    rng, clock = random.Random(seed), Clock(monkeypatch)
    customers = [CustomerFactory(currency=c) for c in ("USD", "USD", "EUR")]
    for step in range(70):
        clock.advance(rng)
        _credit_step(rng, customers, step, clock.now)
    assert CreditLedgerEntry.objects.count() > 40
    instants = list(CreditLedgerEntry.objects.order_by("?").values_list("created_at", flat=True)[:3])
    for start, end, currency in _credit_ranges(clock.now) + [(at, at + timedelta(days=5), None) for at in instants]:
        assert (report_credits(period_start=start, period_end=end, currency=currency)
                == report_credits_reference(period_start=start, period_end=end, currency=currency))
    assert credit_day_mismatches() == []
    assert billing_verify() == []


def _subscription_step(rng: random.Random, customers: list, plans: dict, now: datetime) -> None:
    customer = rng.choice(customers)
    sub = Subscription.objects.filter(customer=customer).exclude(status=S.CANCELED).first()
    try:
        if sub is None:
            choices = [p for p in plans.values() if p.currency == customer.currency]
            subscription_create(customer=customer, plan=rng.choice(choices), actor=ACTOR, now=now,
                                with_trial=rng.random() < 0.5)
            return
        op = rng.choice(["activate", "pause", "resume", "cancel", "cancel_later", "upgrade", "batch", "batch"])
        if op == "activate":
            with transaction.atomic():
                subscription_transition(subscription=subscription_lock(subscription_id=sub.pk), to_status=S.ACTIVE,
                                        actor=ACTOR, now=now)
        elif op == "pause":
            subscription_pause(subscription=sub, actor=ACTOR, now=now)
        elif op == "resume":
            subscription_resume(subscription=sub, actor=ACTOR, now=now)
        elif op in ("cancel", "cancel_later"):
            subscription_cancel(subscription=sub, actor=ACTOR, at_period_end=op == "cancel_later", now=now)
        elif op == "upgrade":
            others = [p for p in plans.values() if p.currency == sub.plan.currency and p.pk != sub.plan_id]
            subscription_change_plan(subscription=sub, new_plan=rng.choice(others), actor=ACTOR, now=now)
        else:  # the billing run's batch moves: several subscriptions, several targets, one call
            live = list(Subscription.objects.exclude(status=S.CANCELED).values_list("pk", flat=True))
            moves = [StatusMove(subscription_id=pk, to_status=rng.choice([S.PAST_DUE, S.ACTIVE, S.CANCELED]))
                     for pk in rng.sample(live, min(len(live), 3))]
            with transaction.atomic():
                subscription_transition_many(moves=moves, actor=ACTOR, now=now, at_period_end=rng.random() < 0.5)
    except (IllegalTransition, InvalidOperation):
        pass


@pytest.mark.parametrize("seed", [4, 19, 2026])
def test_subscription_counts_equal_the_audit_trail_through_every_writer(seed, monkeypatch):
    rng, clock = random.Random(seed), Clock(monkeypatch)
    plans = {code: PlanFactory(code=code, currency=currency, amount=amount, trial_days=trial)
             for code, currency, amount, trial in (("basic", "USD", 1000, 7), ("pro", "USD", 3000, 0),
                                                   ("team", "USD", 9000, 14), ("eu", "EUR", 900, 0),
                                                   ("eu-plus", "EUR", 1900, 0))}
    customers = [CustomerFactory(currency=c) for c in ("USD", "USD", "USD", "EUR", "EUR")]
    for _ in range(80):
        clock.advance(rng)
        _subscription_step(rng, customers, plans, clock.now)
    events = list(SubscriptionEvent.objects.values_list("created_at", flat=True))
    assert len(events) > 40
    instants = {BASE - timedelta(days=1), clock.now + timedelta(days=1)}
    for at in rng.sample(events, 25):
        instants |= {at, at - timedelta(microseconds=1), at.replace(hour=0, minute=0, second=0, microsecond=0),
                     at.replace(day=1, hour=0, minute=0, second=0, microsecond=0), at + timedelta(hours=3)}
    for at in sorted(instants):
        for currency in (None, "EUR"):
            assert (report_subscriptions(at=at, currency=currency)
                    == report_subscriptions_reference(at=at, currency=currency)), at
    assert subscription_count_mismatches() == []
    assert billing_verify() == []


def test_verify_names_a_wrong_rollup_row_and_rebuild_repairs_it(monkeypatch):
    rng, clock = random.Random(1), Clock(monkeypatch)
    customer = CustomerFactory(currency="USD")
    credit_grant(customer=customer, amount=10, source=CreditSource.PURCHASE, actor=ACTOR)
    subscription_create(customer=customer, plan=PlanFactory(currency="USD"), actor=ACTOR)
    clock.advance(rng)
    CreditLedgerDay.objects.update(purchased=9)
    SubscriptionCountMonth.objects.update(delta=2)
    kinds = {m.kind for m in billing_verify()}
    assert kinds == {"credit_ledger_day", "subscriptioncountmonth"}
    call_command("billing", "rollups-rebuild")
    assert billing_verify() == []


def test_report_queries_are_pinned(django_assert_num_queries, monkeypatch):
    rng, clock = random.Random(2), Clock(monkeypatch)
    customers = [CustomerFactory(currency=c) for c in ("USD", "EUR")]
    for step in range(20):
        clock.advance(rng)
        _credit_step(rng, customers, step, clock.now)
    midnight = BASE.replace(hour=0, minute=0)
    with django_assert_num_queries(1):  # whole days: the rollup alone
        report_credits(period_start=midnight, period_end=midnight + timedelta(days=60), currency=None)
    with django_assert_num_queries(2):  # plus the ledger rows of the partial first and last days
        report_credits(period_start=BASE, period_end=clock.now, currency="USD")
    subscription_create(customer=customers[0], plan=PlanFactory(currency="USD"), actor=ACTOR)
    with django_assert_num_queries(2):  # the counts (months and instants in one statement), the plans
        report_subscriptions(at=clock.now, currency=None)


@pytest.mark.django_db(transaction=True)
def test_concurrent_debits_keep_the_credit_days_exact():
    """Eight threads on their own connections debit at once, four customers alone and four sharing one
    customer (so debits wait on its balance row, and on shared day rows): the day rollup stays equal to the
    ledger, and the report to its reference."""
    customers = [CustomerFactory(currency=c) for c in ("USD", "USD", "EUR", "USD", "EUR")]
    for customer in customers:
        credit_grant(customer=customer, amount=1000, source=CreditSource.PURCHASE, actor=ACTOR)
    barrier = threading.Barrier(8)

    def debit(i):
        close_old_connections()
        try:
            barrier.wait()
            for n in range(10):
                credit_debit(customer=customers[min(i, 4)], amount=1 + n % 3, actor=ACTOR, idempotency_key=f"{i}:{n}")
        finally:
            connection.close()

    threads = run_threads([partial(debit, i) for i in range(8)], join_timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert CreditLedgerEntry.objects.filter(kind=LedgerKind.DEBIT).count() == 80
    assert credit_day_mismatches() == []
    day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    for start, end in ((day, day + timedelta(days=1)), (day - timedelta(days=3), timezone.now())):
        assert (report_credits(period_start=start, period_end=end, currency=None)
                == report_credits_reference(period_start=start, period_end=end, currency=None))


def test_a_customer_with_credits_keeps_its_currency():
    """The credit days are summed per the currency a ledger row was written in: moving a customer's history to
    another currency afterwards would make them disagree with the report's definition."""
    with_credits, without = CustomerFactory(currency="USD"), CustomerFactory(currency="USD")
    credit_grant(customer=with_credits, amount=5, source=CreditSource.PROMOTION, actor=ACTOR)
    with pytest.raises(InvalidOperation):
        customer_update(customer=with_credits, actor=ACTOR, currency="EUR")
    assert customer_update(customer=without, actor=ACTOR, currency="EUR").currency == "EUR"
