"""Usage alerts and spend caps: thresholds checked inside the usage batch's own transaction
(docs/billing.md, "Usage alerts and spend caps").

Before the batch is stored, the customer's row is locked when any of its thresholds watches a meter of the
batch, so concurrent batches of one customer are checked one after another: each sees the usage the others
committed, a crossing is seen by exactly one batch, and a hard cap can never be passed by two batches that
each stayed under it alone. After the batch is stored and its credits debited, the usage is aggregated
again: a hard cap passed refuses the whole batch (SpendCapReached, 402, naming the cap; the transaction
rolls back the events and the debit together), and each threshold crossed writes its alert once per period
(a unique row), with an outbound webhook and an email job in the same transaction.

Credit-balance thresholds are checked by every credit debit instead (the API's, a usage event's, a
batch's), in the debit's transaction: credits calls `credit_balance_thresholds_check` (registered in
usage/apps.py, as credits sits below usage). The levels come from a per-process memo (core.memo), so a
debit that crosses none costs no query; only a possible crossing reads the customer's period and writes
the alert. No hard cap exists for a balance: the ledger already refuses a debit below zero.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import SpendCapReached
from core.jobs import jobs_defer_many
from credits.thresholds import BalanceMove
from subscriptions.models import LIVE_SUBSCRIPTION_STATUSES, Customer, Subscription
from usage.models import CREDIT_THRESHOLDS_MEMO, Meter, MeterPrice, ThresholdKind, UsageAlert, UsageThreshold
from usage.selectors import usage_aggregate
from usage.webhooks import usage_alerts_webhook_emit

USAGE_ALERT_TASK = "usage.usage_alert_email"


@dataclass
class ThresholdCheck:
    """What `usage_thresholds_prepare` learnt before the batch, for `usage_thresholds_apply` after it."""

    customer: Customer
    period_start: datetime
    period_end: datetime
    # The meter thresholds and the usage level (in the meter's units) each is reached at; None: never.
    limits: list[tuple[UsageThreshold, Decimal | None]] = field(default_factory=list)
    usage_before: dict[int, Decimal] = field(default_factory=dict)


def usage_thresholds_of(*, customer: Customer) -> list[UsageThreshold]:
    """The customer's own thresholds and its live plan's, in one query."""
    live_plan = Q(plan__subscriptions__customer=customer, plan__subscriptions__status__in=LIVE_SUBSCRIPTION_STATUSES)
    return list(UsageThreshold.objects.filter(Q(customer=customer) | live_plan).select_related("meter")
                .distinct().order_by("pk"))


def _period(*, customer_id: int, now: datetime) -> tuple[datetime, datetime, Subscription | None]:
    subscription = (Subscription.objects.filter(customer_id=customer_id, status__in=LIVE_SUBSCRIPTION_STATUSES)
                    .only("plan_id", "current_period_start", "current_period_end").first())
    if subscription is not None:
        return subscription.current_period_start, subscription.current_period_end, subscription
    # No live subscription: the calendar month (UTC) is the period thresholds count in.
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end, None


def _limit_units(*, threshold: UsageThreshold, price: MeterPrice | None) -> Decimal | None:
    """The usage (meter units) at which the threshold is reached."""
    if threshold.kind == ThresholdKind.UNITS:
        return threshold.value
    included = price.included_units if price else Decimal(0)
    if threshold.kind == ThresholdKind.INCLUDED_PERCENT:
        return included * threshold.value / 100 if included else None
    if price is None or not price.unit_amount:
        return None  # usage is free here: no charge ever reaches it
    return included + threshold.value / price.unit_amount


def usage_thresholds_prepare(*, customer: Customer, meters: list[Meter], now: datetime) -> ThresholdCheck | None:
    """Called first in the batch's transaction: None when no threshold concerns this batch."""
    meter_ids = {m.pk for m in meters}
    meter_thresholds = [t for t in usage_thresholds_of(customer=customer)
                        if t.kind != ThresholdKind.CREDIT_BALANCE and t.meter_id in meter_ids]
    if not meter_thresholds:
        return None
    start, end, subscription = _period(customer_id=customer.pk, now=now)
    check = ThresholdCheck(customer=customer, period_start=start, period_end=end)
    # Serialises this customer's batches (see module doc); taken before anything else of the batch.
    Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").get()
    prices = {} if subscription is None else {
        p.meter_id: p for p in MeterPrice.objects.filter(plan_id=subscription.plan_id,
                                                         meter_id__in=[t.meter_id for t in meter_thresholds])}
    check.limits = [(t, _limit_units(threshold=t, price=prices.get(t.meter_id))) for t in meter_thresholds]
    check.usage_before = _usage_now(check=check)
    return check


def _usage_now(*, check: ThresholdCheck) -> dict[int, Decimal]:
    meters = {t.meter_id: t.meter for t, _ in check.limits}
    return {pk: usage_aggregate(customer=check.customer, meter=meter, start=check.period_start, end=check.period_end)
            for pk, meter in meters.items()}


def usage_thresholds_apply(*, check: ThresholdCheck) -> None:
    """Called last in the batch's transaction: refuse a passed hard cap, record and announce crossings."""
    after = _usage_now(check=check)
    crossed: list[tuple[int, Decimal]] = []
    for threshold, limit in check.limits:
        if limit is None:
            continue
        before, now_at = check.usage_before[threshold.meter_id], after[threshold.meter_id]
        if threshold.hard_cap and now_at > limit:
            raise SpendCapReached(
                _("The hard cap %(cap)s allows %(limit)s %(unit)s of %(meter)s this period; %(used)s are used and "
                  "this batch would take it to %(after)s. Nothing was stored.")
                % {"cap": threshold, "limit": f"{limit:g}", "unit": threshold.meter.unit, "meter": threshold.meter.code,
                   "used": f"{before:g}", "after": f"{now_at:g}"},
                extra={"cap": {"id": threshold.pk, "name": str(threshold), "meter": threshold.meter.code,
                               "limit": str(limit), "used": str(before), "period_end": check.period_end.isoformat()}})
        if before < limit <= now_at:
            crossed.append((threshold.pk, now_at))
    if crossed:
        _alerts_record(customer_id=check.customer.pk, period_start=check.period_start, period_end=check.period_end,
                       crossed=crossed)


def credit_balance_levels_watched(customer_id: int) -> list[Decimal]:
    """The credit-balance levels a debit of this customer may cross (its own and every plan's: which plan is
    live would need a query), from the memo."""
    return [level.value for level in CREDIT_THRESHOLDS_MEMO.get() if level.customer_id in (None, customer_id)]


def credit_balance_thresholds_check(move: BalanceMove) -> None:
    """A credit debit's watcher (credits.thresholds), in its transaction: the credit-balance thresholds of
    the customer (its own, its live plan's) that the move crossed downwards alert once per period. No
    query unless some threshold's level lies in [after, before) (from the memo)."""
    levels = CREDIT_THRESHOLDS_MEMO.get()
    possible = [level for level in levels if move.balance_before > level.value >= move.balance_after
                and level.customer_id in (None, move.customer_id)]
    if not possible:
        return
    start, end, subscription = _period(customer_id=move.customer_id, now=timezone.now())
    live_plan = subscription.plan_id if subscription is not None else None
    ids = [level.threshold_id for level in possible if level.customer_id == move.customer_id
           or (live_plan is not None and level.plan_id == live_plan)]
    # Read again, in this transaction: the memo may hold a threshold deleted a moment ago.
    current = list(UsageThreshold.objects.filter(pk__in=ids, kind=ThresholdKind.CREDIT_BALANCE)
                   .order_by("pk").values_list("pk", "value")) if ids else []
    crossed = [(pk, Decimal(move.balance_after)) for pk, value in current
               if move.balance_before > value >= move.balance_after]
    if crossed:
        _alerts_record(customer_id=move.customer_id, period_start=start, period_end=end, crossed=crossed)


def _alerts_record(*, customer_id: int, period_start: datetime, period_end: datetime,
                   crossed: list[tuple[int, Decimal]]) -> None:
    """One alert per (threshold, customer, period): ON CONFLICT DO NOTHING, so a repeat changes nothing."""
    table = UsageAlert._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(crossed))
    now = timezone.now()
    params = [p for pk, observed in crossed for p in (pk, customer_id, period_start, observed, now)]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (threshold_id, customer_id, period_start, observed, created_at) "
                       f"VALUES {values} ON CONFLICT (threshold_id, customer_id, period_start) DO NOTHING "
                       f"RETURNING id", params)
        alert_ids = [row[0] for row in cursor.fetchall()]
    if alert_ids:
        alerts = list(UsageAlert.objects.filter(pk__in=alert_ids).select_related("threshold__meter").order_by("pk"))
        usage_alerts_webhook_emit(alerts=alerts, period_end=period_end)
        jobs_defer_many(name=USAGE_ALERT_TASK, kwargs_list=[{"alert_id": a.pk} for a in alerts])
