"""The forecast per day and currency (the report, /api/v1/reports/forecast/) without walking every
subscription: the same answer as `billing_forecast` then `forecast_by_day`, in a constant number of queries.

Two subscriptions whose renewal-decision inputs agree issue the same invoices on the same days, so one
GROUP BY counts the subscriptions of each equivalence class, one representative per class is walked through
the same `forecast_steps` (renewal_decide, decision_lines) as the per-subscription forecast, and its
invoices count once per member. What `renewal_decide`, `next_period` and `decision_lines` read, and so
what a class agrees on:

- plan, scheduled plan (the plan in force next, P), status, cancel_at_period_end, the customer's currency,
  and, for a trial only, whether the customer has a saved payment method (trial_needs_cancel);
- the current period's end E at day level: its UTC date, whether it is already past (E <= now: the
  invoice is issued now) and whether its time of day is before the anchor's;
- the cycle anchor A at day level: its day of month, its month index modulo P's months (which months
  periods end in), and whether its time of day is <= now's and < the horizon's (UTC).

Why that is enough: every later period end is `period_containing(A, P, E).end` and then the next ones,
that is the first grid instants (A's year-month + k * P's months, day min(A's day, month length), A's
time) after E (given E >= A). Which grid month comes first after E depends on E's date, its time against
A's time (same date only), A's day and the month phase; the grid instants then share their UTC dates, and
their comparisons with now and the horizon (`max(end, now)`, `end < horizon`) differ only on the days of
now and the horizon, where the two time bits decide them. Plan fees do not depend on dates.

A subscription whose invoices depend on more is its own class (walked alone, its inputs read in bulk):
usage recorded in [period start, now) on a priced meter of its plan or scheduled plan, a pending credit
pack order, or a period end before its anchor (outside the grid argument)."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db.models import Case, Count, Exists, F, IntegerField, Min, OuterRef, Q, Value, When
from django.db.models.functions import Mod
from django.db.models.lookups import LessThan, LessThanOrEqual

from core.bulk import array_of
from payments.billing.forecast import (
    FORECAST_STATUSES,
    ForecastDay,
    ForecastStep,
    forecast_step_total,
    forecast_steps,
)
from payments.billing.lines import Catalog, catalog_load
from payments.billing.renewals import ClaimedSubscription
from payments.models import CreditPackOrder, CreditPackOrderStatus, ProviderAccount
from payments.selectors.provider_accounts import HAS_SAVED_METHOD
from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.periods import months_per_period
from usage.models import UsageEvent
from usage.selectors import UsageWindow, usage_aggregate_windows

# A representative's columns, in ClaimedSubscription's order: renewal_decide reads it as it reads a claim.
_REPRESENTATIVE_COLUMNS = ("id", "customer_id", "plan_id", "scheduled_plan_id", "status", "billing_cycle_anchor",
                           "current_period_start", "current_period_end", "cancel_at_period_end",
                           "customer__currency", HAS_SAVED_METHOD)


def _anchor_phase(*, catalog: Catalog):
    """The anchor's month index modulo the months of the plan in force next (the scheduled plan, else the
    plan): a CASE over the catalog's plans, so the GROUP BY joins no plan. A plan missing from the catalog
    (created since it was read) keeps the whole month index, a finer key and so still an exact one."""
    by_months: dict[int, list[int]] = defaultdict(list)
    for plan in catalog.plans.values():
        by_months[months_per_period(interval=plan.interval, interval_count=plan.interval_count)].append(plan.pk)
    return Case(*[When(Q(scheduled_plan_id__in=ids) | Q(scheduled_plan_id__isnull=True, plan_id__in=ids),
                       then=Mod(F("anchor_month"), Value(months))) for months, ids in sorted(by_months.items())],
                default=F("anchor_month"), output_field=IntegerField())


def _saved_method() -> Exists:
    return Exists(ProviderAccount.objects.filter(customer_id=OuterRef("customer_id"))
                  .exclude(default_payment_method_id=""))


def _alone(*, now: datetime, catalog: Catalog) -> Q:
    """Subscriptions whose invoices depend on more than their class: walked on their own."""
    pending = CreditPackOrder.objects.filter(status=CreditPackOrderStatus.PENDING).values("customer_id")
    alone = Q(customer_id__in=pending) | Q(current_period_end__lt=F("billing_cycle_anchor"))
    metered = [plan_id for plan_id, prices in catalog.prices.items() if prices]
    if metered:
        meters = sorted({p.meter_id for prices in catalog.prices.values() for p in prices})
        used = Exists(UsageEvent.objects.filter(customer_id=OuterRef("customer_id"), meter_id__in=meters,
                                                occurred_at__gte=OuterRef("current_period_start"),
                                                occurred_at__lt=now))
        alone |= (Q(plan_id__in=metered) | Q(scheduled_plan_id__in=metered)) & Q(used)
    return alone


def forecast_classes(*, now: datetime, horizon: datetime, currency: str | None,
                     catalog: Catalog) -> list[tuple[int, int]]:
    """(representative subscription id, members) of every equivalence class due before the horizon, in
    one grouped query (the module docstring lists the key and why it suffices)."""
    now_time, horizon_time = now.astimezone(UTC).time(), horizon.astimezone(UTC).time()
    # The period end's and the anchor's UTC parts are stored (Subscription's generated columns): only
    # comparisons with now and the horizon are left to compute per row.
    rows = (Subscription.objects
            .filter(status__in=FORECAST_STATUSES, current_period_end__lt=horizon, billed_by="",
                    **({"customer__currency": currency} if currency else {}))
            .annotate(
                k_saved=Case(When(status=SubscriptionStatus.TRIALING, then=_saved_method()), default=Value(False)),
                k_alone=Case(When(_alone(now=now, catalog=catalog), then=F("pk")), default=None),
                k_end_past=LessThanOrEqual(F("current_period_end"), Value(now)),
                k_anchor_phase=_anchor_phase(catalog=catalog),
                k_anchor_by_now=LessThanOrEqual(F("anchor_time"), Value(now_time)),
                k_anchor_by_horizon=LessThan(F("anchor_time"), Value(horizon_time)))
            .values("plan_id", "scheduled_plan_id", "status", "cancel_at_period_end", "customer__currency",
                    "k_saved", "k_alone", "period_end_day", "k_end_past", "period_end_before_anchor_time",
                    "anchor_day", "k_anchor_phase", "k_anchor_by_now", "k_anchor_by_horizon")
            .annotate(representative=Min("pk"), members=Count("pk"))
            .values_list("representative", "members")
            .order_by("representative"))
    return list(rows)


def _representatives(*, ids: list[int], catalog: Catalog) -> list[ClaimedSubscription]:
    rows = (Subscription.objects.filter(pk__in=array_of(ids))
            .annotate(**{HAS_SAVED_METHOD: _saved_method()})
            .order_by("pk").values_list(*_REPRESENTATIVE_COLUMNS))
    found = [ClaimedSubscription(*row) for row in rows]
    for sub in found:
        sub.plan = catalog.plan(sub.plan_id)
        sub.scheduled_plan = catalog.plan(sub.scheduled_plan_id) if sub.scheduled_plan_id else None
    return found


def _pending_orders(*, representatives: list[ClaimedSubscription]) -> dict[int, list[CreditPackOrder]]:
    """The pending orders each representative's first invoice bills (only a subscription alone has any)."""
    by_customer = {s.customer_id: s for s in representatives}
    billed: dict[int, list[CreditPackOrder]] = defaultdict(list)
    for order in (CreditPackOrder.objects.filter(status=CreditPackOrderStatus.PENDING,
                                                 customer_id__in=array_of(by_customer))
                  .only("id", "customer_id", "pack_code", "credits", "amount", "currency", "created_at")
                  .order_by("pk")):
        sub = by_customer[order.customer_id]
        if order.currency == sub.currency and order.created_at < sub.current_period_end:
            billed[sub.pk].append(order)
    return billed


def _usage(*, metered: list[tuple[ClaimedSubscription, ForecastStep]]) -> list[dict]:
    """The usage recorded so far in each step's window, in one query (none without a step)."""
    windows = [UsageWindow(customer_id=sub.customer_id, start=step.usage_window[0], end=step.usage_window[1])
               for sub, step in metered]
    meters = sorted({price.meter_id for _, step in metered for price in step.prices})
    return usage_aggregate_windows(windows=windows, meter_ids=meters)


def _step_total(*, step: ForecastStep, usage: dict, orders: list[CreditPackOrder],
                totals: dict[tuple, int | None]) -> int | None:
    """forecast_step_total, remembered for steps without usage or orders: their lines' amounts depend only
    on the plan billed in advance and the prices of the period billed in arrears (dates are only in the
    descriptions), and building lines (descriptions formatted) was most of a long window's time."""
    if usage or orders:
        return forecast_step_total(step=step, usage=usage, orders=orders)
    decision = step.decision
    key = (decision.plan.pk if decision.renews else None, decision.usage_start is not None,
           tuple(price.pk for price in step.prices))
    if key not in totals:
        totals[key] = forecast_step_total(step=step, usage={}, orders=[])
    return totals[key]


def billing_forecast_days(*, now: datetime, days: int, currency: str | None = None) -> list[ForecastDay]:
    """`forecast_by_day(invoices=billing_forecast(...))`, from one walk per equivalence class."""
    horizon = now + timedelta(days=days)
    catalog = catalog_load()
    members = dict(forecast_classes(now=now, horizon=horizon, currency=currency, catalog=catalog))
    representatives = _representatives(ids=list(members), catalog=catalog)
    orders = _pending_orders(representatives=representatives)
    grouped: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    totals: dict[tuple, int | None] = {}

    def count(sub: ClaimedSubscription, step: ForecastStep, usage: dict) -> None:
        total = _step_total(step=step, usage=usage, orders=orders[sub.pk] if step.first else [], totals=totals)
        if total is not None:
            figures = grouped[(step.issue_at.date(), sub.currency)]
            figures[0] += members[sub.pk]
            figures[1] += total * members[sub.pk]

    # Each step is counted as soon as it is walked (the walk moves the representative forward in place;
    # its customer and currency stay), so steps die young: holding every step of a long window to the end
    # promoted tens of thousands of objects a call, and the collector's full passes that followed (hundreds
    # of ms in a big process) became the report's p95. Steps billing usage wait for one bulk read.
    metered = []
    for sub in representatives:
        for step in forecast_steps(subscription=sub, now=now, horizon=horizon, catalog=catalog):
            if step.usage_window is not None and step.prices:
                metered.append((sub, step))
            else:
                count(sub, step, {})
    for (sub, step), usage in zip(metered, _usage(metered=metered), strict=True):
        count(sub, step, usage)
    return [ForecastDay(day=day, currency=code, invoices=n, total=total)
            for (day, code), (n, total) in sorted(grouped.items())]
