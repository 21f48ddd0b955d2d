"""The forecast per day (payments.billing.forecast_classes: one walk per equivalence class) is exactly the
per-subscription walk (payments.billing.forecast) summed per day, on random books that mix every input the
renewal decision reads, and costs the same number of queries whatever the number of subscriptions."""

import itertools
import random
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.audit import Actor
from core.bulk import rows_copy
from payments.billing.forecast import billing_forecast, forecast_by_day
from payments.billing.forecast_classes import billing_forecast_days, forecast_classes
from payments.billing.lines import catalog_load
from payments.billing.resume import subscription_resume_billed
from payments.billing.run import billing_run
from payments.services import subscription_change_plan
from payments.services.credit_pack_orders import credit_pack_order_place
from payments.tests.factories import StripeCustomerFactory
from subscriptions.models import BillingInterval, Subscription, SubscriptionStatus
from subscriptions.periods import period_boundary
from subscriptions.services import subscription_pause
from subscriptions.tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory
from usage.models import MeterPrice, UsageEvent
from usage.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db
S = SubscriptionStatus
# 02:15 UTC: in UTC-5 it is still the evening before, so the day an invoice issued "now" lands on is not
# the UTC day of the instants compared with it.
NOW = timezone.now().replace(hour=2, minute=15, second=0, microsecond=0)
EVENING_BEFORE = dt_timezone(timedelta(hours=-5))


def _catalog(currency: str) -> tuple[list, object]:
    metered = PlanFactory(amount=2000, currency=currency)
    meter = MeterFactory()
    MeterPrice.objects.create(plan=metered, meter=meter, unit_amount=Decimal("0.5"), included_units=Decimal(10))
    return [metered, PlanFactory(amount=1500, currency=currency), PlanFactory(amount=0, currency=currency),
            PlanFactory(amount=12000, currency=currency, interval=BillingInterval.YEAR),
            PlanFactory(amount=2700, currency=currency, interval=BillingInterval.MONTH, interval_count=3)], meter


def _time_of_day(rng: random.Random) -> timedelta:
    """Times that fall on both sides of now's and the horizon's (02:15 UTC), and elsewhere."""
    return rng.choice([timedelta(0), timedelta(hours=2, minutes=15), timedelta(hours=2, minutes=15, microseconds=1),
                       timedelta(hours=2, minutes=14, seconds=59), timedelta(hours=13),
                       timedelta(hours=rng.randrange(24), seconds=rng.randrange(3600))])


def _anchor(rng: random.Random):
    """Few distinct days (so classes gather members) at times on both sides of now's."""
    day = NOW - timedelta(days=rng.choice([0, 1, 29, 30, 31, 61, 92, 300, 365, 400]))
    return day.replace(hour=0, minute=0, second=0, microsecond=0) + _time_of_day(rng)


def _period(rng: random.Random, plan, anchor):
    """The current period: the one after the anchor or a later one (several periods behind now, or ahead),
    one whose end was clamped off the anchor's grid (Jan 31 -> Feb 28 -> Mar 28), one that ends an hour
    before or after its grid instant, or one that ends on a day of its own (a period restarted on resume)."""
    periods = rng.choice([1, 1, 2, 3, 5])
    start = period_boundary(anchor=anchor, interval=plan.interval, interval_count=plan.interval_count,
                            periods=periods - 1)
    end = period_boundary(anchor=anchor, interval=plan.interval, interval_count=plan.interval_count, periods=periods)
    shape = rng.random()
    if shape < 0.15:
        end = period_boundary(anchor=start, interval=plan.interval, interval_count=plan.interval_count, periods=1)
    elif shape < 0.3:
        end += timedelta(hours=rng.choice([-1, 1]))
    elif shape < 0.45:
        end = (NOW + timedelta(days=rng.choice([-40, -1, 0, 3, 10]))).replace(hour=0, minute=0) + _time_of_day(rng)
        start = min(start, end - timedelta(days=1))
    return start, end


def _random_book(seed: int, count: int) -> None:
    rng = random.Random(seed)
    plans, meters = {}, {}
    for currency in ("USD", "EUR"):
        plans[currency], meters[currency] = _catalog(currency)
    for n in range(count):
        currency = rng.choice(["USD", "USD", "USD", "EUR"])
        plan = rng.choice(plans[currency])
        status = rng.choices([S.ACTIVE, S.PAST_DUE, S.TRIALING, S.PAUSED, S.INCOMPLETE, S.CANCELED],
                             weights=[12, 1, 4, 1, 1, 1])[0]
        fields = {}
        if rng.random() < 0.1:
            fields["cancel_at_period_end"] = True
        elif rng.random() < 0.1:
            fields["scheduled_plan"] = rng.choice(plans[currency])
        if rng.random() < 0.05:
            fields["billed_by"] = "lemonsqueezy"  # mirrored: the merchant of record bills it
        saved = rng.random() < 0.5
        customer = (StripeCustomerFactory(user=None, currency=currency, stripe_default_payment_method_id="pm_card")
                    if saved else CustomerFactory(user=None, currency=currency))
        anchor = _anchor(rng)
        start, end = _period(rng, plan, anchor)
        sub = SubscriptionFactory(customer=customer, plan=plan, status=status, billing_cycle_anchor=anchor,
                                  current_period_start=start, current_period_end=end, **fields)
        if rng.random() < 0.2:
            for k in range(rng.randrange(1, 4)):
                UsageEvent.objects.create(customer=customer, meter=meters[currency],
                                          quantity=Decimal(rng.randrange(1, 300)),
                                          occurred_at=max(start, NOW - timedelta(days=k * 20 + 1)),
                                          idempotency_key=f"u-{n}-{k}")
        if status in (S.TRIALING, S.ACTIVE, S.PAST_DUE) and not sub.billed_by and rng.random() < 0.1:
            credit_pack_order_place(customer=customer, pack="credits-100", actor=Actor.system("test"))


@pytest.mark.parametrize("seed", [11, 12])
def test_the_forecast_per_day_is_the_walk_summed_per_day(settings, seed):
    settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION = seed % 2 == 1
    _random_book(seed, 250)
    for days, now in itertools.product([1, 7, 30, 90, 366], [NOW, NOW.astimezone(EVENING_BEFORE)]):
        walked = forecast_by_day(invoices=billing_forecast(now=now, days=days))
        assert billing_forecast_days(now=now, days=days) == walked, (days, now)
        for currency in ("USD", "EUR", "GBP"):
            assert billing_forecast_days(now=now, days=days, currency=currency) == [d for d in walked
                                                                                    if d.currency == currency]
        # The classes did gather subscriptions: fewer walks than subscriptions.
        classes = forecast_classes(now=now, horizon=now + timedelta(days=days), currency=None,
                                   catalog=catalog_load())
        assert len(classes) < sum(members for _, members in classes)


def test_subscriptions_alike_are_walked_once(settings):
    """Thirty subscriptions on the same plan whose periods end on the same day at different times, and
    three that differ in what the decision reads: four walks, and still the walk's figures."""
    settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION = True
    plan = PlanFactory(amount=1000)
    day = (NOW - timedelta(days=20)).replace(hour=0, minute=0, second=0, microsecond=0)
    for n in range(30):
        anchor = day + timedelta(hours=10, seconds=n * 97)
        SubscriptionFactory(customer=CustomerFactory(user=None), plan=plan, billing_cycle_anchor=anchor)
    anchor = day + timedelta(hours=10)
    SubscriptionFactory(customer=CustomerFactory(user=None), plan=plan, billing_cycle_anchor=anchor,
                        cancel_at_period_end=True)
    SubscriptionFactory(customer=CustomerFactory(user=None), plan=plan, billing_cycle_anchor=anchor,
                        status=S.TRIALING)
    SubscriptionFactory(customer=CustomerFactory(user=None), plan=plan, billing_cycle_anchor=anchor,
                        scheduled_plan=PlanFactory(amount=300))
    classes = forecast_classes(now=NOW, horizon=NOW + timedelta(days=90), currency=None, catalog=catalog_load())
    assert sorted(members for _, members in classes) == [1, 1, 1, 30]
    days = billing_forecast_days(now=NOW, days=90)
    assert days == forecast_by_day(invoices=billing_forecast(now=NOW, days=90))
    # Three renewals each for the thirty and the downgraded one; the cancellation and the trial without a
    # payment method end with nothing in arrears, so with no invoice.
    assert sum(d.invoices for d in days) == 30 * 3 + 3
    assert sum(d.total for d in days) == 30 * 3 * 1000 + 3 * 300


def _queries(days: int) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        billing_forecast_days(now=NOW, days=days)
    return [q["sql"] for q in queries]


def test_the_query_count_does_not_grow_with_the_subscriptions_and_nothing_is_written(settings):
    settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION = True
    _random_book(21, 15)
    few = _queries(366)
    _random_book(22, 60)
    many = _queries(366)
    assert len(many) == len(few) <= 6
    assert not [sql for sql in many if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


FIXED = datetime(2027, 3, 10, 2, 15, tzinfo=UTC)
# Two subscriptions that differ in one input of the class key only, whose invoices land on other days:
# (plan interval_count, days, [(anchor, period start, period end)] * 2).
PAIRS = {
    # The period ends off the anchor's grid: the next period end is the anchor's day of month (Mar 20, Apr 5).
    "anchor day": (1, 60, [(datetime(2027, 1, 5, 12), datetime(2027, 3, 3, 12), datetime(2027, 3, 13, 12)),
                           (datetime(2027, 1, 20, 12), datetime(2027, 3, 3, 12), datetime(2027, 3, 13, 12))]),
    # A quarterly plan: the months periods end in (Jun 5 from a December anchor, Apr 5 from a January one).
    "anchor phase": (3, 120, [(datetime(2026, 12, 5, 12), datetime(2027, 3, 3, 12), datetime(2027, 3, 13, 12)),
                              (datetime(2027, 1, 5, 12), datetime(2027, 3, 3, 12), datetime(2027, 3, 13, 12))]),
    # Ended before now (issued now, which is the evening before in UTC-5) or later the same UTC day.
    "end past": (1, 30, [(datetime(2027, 1, 20, 23), datetime(2027, 3, 1), datetime(2027, 3, 10, 1)),
                         (datetime(2027, 1, 20, 23), datetime(2027, 3, 1), datetime(2027, 3, 10, 3))]),
    # Two periods behind: the third invoice's period ends on now's UTC day, before now or after it (and, in
    # New York across the change to summer time, after the horizon's UTC time of day, 01:15, both times).
    "anchor by now": (1, 30, [(datetime(2026, 12, 10, 1, 30), datetime(2027, 1, 1), datetime(2027, 2, 10, 0, 30)),
                              (datetime(2026, 12, 10, 3), datetime(2027, 1, 1), datetime(2027, 2, 10, 0, 30))]),
}


@pytest.mark.parametrize("case", PAIRS)
def test_an_input_that_moves_an_invoice_to_another_day_separates_the_classes(case):
    count, days, periods = PAIRS[case]
    plan = PlanFactory(amount=1000, interval=BillingInterval.MONTH, interval_count=count)
    subs = [SubscriptionFactory(customer=CustomerFactory(user=None), plan=plan,
                                billing_cycle_anchor=anchor.replace(tzinfo=UTC),
                                current_period_start=start.replace(tzinfo=UTC),
                                current_period_end=end.replace(tzinfo=UTC))
            for anchor, start, end in periods]
    # 21:15 the evening before, four days before summer time: the horizon is at another UTC time than now.
    now = FIXED.astimezone(ZoneInfo("America/New_York"))
    walked = billing_forecast(now=now, days=days)
    days_of = [sorted(i.issue_at.date() for i in walked if i.subscription_id == sub.pk) for sub in subs]
    assert days_of[0] != days_of[1]
    assert billing_forecast_days(now=now, days=days) == forecast_by_day(invoices=walked)
    assert len(forecast_classes(now=now, horizon=now + timedelta(days=days), currency=None,
                                catalog=catalog_load())) == 2


# ------------------------------------------------------------------ the stored key parts and their writers


def _assert_stored_parts_are_the_rows_own() -> None:
    """Every subscription's generated key columns (subscriptions.models.Subscription) are what Python
    makes of its own period end and anchor in UTC."""
    rows = Subscription.objects.values_list("current_period_end", "billing_cycle_anchor", "period_end_day",
                                            "period_end_before_anchor_time", "anchor_day", "anchor_month",
                                            "anchor_time")
    for end, anchor, end_day, before, anchor_day, anchor_month, anchor_time in rows:
        end, anchor = end.astimezone(UTC), anchor.astimezone(UTC)
        assert (end_day, before, anchor_day, anchor_month, anchor_time) == (
            end.date(), end.time() < anchor.time(), anchor.day,
            anchor.year * 12 + anchor.month - 1, anchor.time()), (end, anchor)


def test_the_stored_key_parts_are_the_utc_parts_of_any_instant():
    """Written by the ORM, by an UPDATE and by COPY, at instants on both sides of midnight and of each
    other's time of day, with and without microseconds, in offsets other than UTC."""
    rng = random.Random(5)
    instants = [datetime(2027, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                datetime(2027, 2, 28, 2, 15, tzinfo=dt_timezone(timedelta(hours=5))),
                datetime(2027, 3, 1, 21, 0, 0, 1, tzinfo=ZoneInfo("America/New_York")),
                datetime(1999, 12, 31, 12, tzinfo=UTC), datetime(2400, 2, 29, 6, tzinfo=UTC)]
    instants += [datetime(2027, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**8),
                                                              microseconds=rng.randrange(10**6))
                 for _ in range(30)]
    for anchor, end in zip(instants, instants[1:] + instants[:1], strict=True):
        SubscriptionFactory(customer=CustomerFactory(user=None), billing_cycle_anchor=anchor,
                            current_period_start=min(anchor, end) - timedelta(days=1), current_period_end=end)
    _assert_stored_parts_are_the_rows_own()
    first = Subscription.objects.order_by("pk").first()
    Subscription.objects.filter(pk=first.pk).update(
        billing_cycle_anchor=datetime(2027, 5, 31, 23, 30, tzinfo=UTC),
        current_period_end=datetime(2027, 6, 30, 23, 29, 59, tzinfo=UTC))
    rows_copy(model=Subscription, fields=("customer", "plan", "status", "billing_cycle_anchor", "current_period_start",
                                          "current_period_end", "cancel_at_period_end", "metadata", "created_at",
                                          "updated_at"),
              rows=[(CustomerFactory(user=None).pk, first.plan_id, "active", datetime(2028, 2, 29, 1, tzinfo=UTC),
                     datetime(2028, 2, 29, 1, tzinfo=UTC), datetime(2028, 3, 29, 0, 59, tzinfo=UTC), False, "{}",
                     NOW, NOW)])
    _assert_stored_parts_are_the_rows_own()


def test_the_classes_follow_renewals_plan_changes_pauses_and_moved_anchors(settings):
    """The services that move a period end or an anchor (the billing run's batch UPDATE, an upgrade now, a
    downgrade at the period end, a pause and a resume that restarts the cycle, a staff edit of the anchor)
    leave stored key parts that still give the walk's figures."""
    settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION = False
    actor = Actor.system("test")
    monthly, cheaper, dearer = PlanFactory(amount=3000), PlanFactory(amount=1000), PlanFactory(amount=5000)
    yearly = PlanFactory(amount=30000, interval=BillingInterval.YEAR)
    start = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)
    subs = []
    for n in range(12):
        anchor, plan = start + timedelta(days=n % 4, hours=n), yearly if n > 9 else monthly
        subs.append(SubscriptionFactory(customer=CustomerFactory(user=None), plan=plan, billing_cycle_anchor=anchor,
                                        current_period_start=anchor,
                                        current_period_end=period_boundary(anchor=anchor, interval=plan.interval,
                                                                           interval_count=1, periods=1)))
    billing_run(as_of=datetime(2027, 3, 5, tzinfo=UTC))
    after_run = datetime(2027, 3, 6, tzinfo=UTC)
    subscription_change_plan(subscription=subs[0], new_plan=dearer, actor=actor, now=after_run)
    subscription_change_plan(subscription=subs[1], new_plan=cheaper, actor=actor, now=after_run)
    subscription_pause(subscription=subs[2], actor=actor, now=after_run)
    resumed_at = datetime(2027, 4, 20, 17, 45, 12, tzinfo=UTC)
    subscription_resume_billed(subscription=subs[2], actor=actor, now=resumed_at)
    Subscription.objects.filter(pk=subs[3].pk).update(billing_cycle_anchor=datetime(2026, 12, 15, 8, tzinfo=UTC))
    _assert_stored_parts_are_the_rows_own()
    assert Subscription.objects.get(pk=subs[2].pk).anchor_time == resumed_at.time()
    for days, now in itertools.product([30, 366], [resumed_at, resumed_at.astimezone(EVENING_BEFORE)]):
        assert billing_forecast_days(now=now, days=days) == forecast_by_day(
            invoices=billing_forecast(now=now, days=days)), (days, now)
