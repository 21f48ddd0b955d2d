"""`manage.py billing preview --all --days N` and the forecast report: every invoice the billing run will
issue in the next N days, across all customers, writing nothing.

Each subscription due in the window is walked forward period by period on an unsaved copy, asking the
same renewal decision (`payments.billing.decision.renewal_decide`) and building the same lines
(`decision_lines`, `credit_pack_lines`) as the run: renewals, trials that end, scheduled downgrades and
cancellations at period end. Usage is what was recorded so far (later periods have none yet), credit
packs ordered on account go on the first invoice, and an invoice is expected when its period ends (or at
once, for a period that has already ended and waits for the next run)."""

import copy
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from payments.billing.decision import RenewalDecision, decision_lines, renewal_decide
from payments.billing.lines import Catalog, catalog_load, credit_pack_lines, lines_subtotal
from payments.models import CreditPackOrder, CreditPackOrderStatus
from payments.services import invoice_total
from subscriptions.models import Subscription, SubscriptionStatus
from usage.models import MeterPrice
from usage.selectors import UsageWindow, usage_aggregate_many

# Statuses the run renews or ends; paused, incomplete and canceled subscriptions issue nothing.
FORECAST_STATUSES = [SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE]
MAX_FORECAST_DAYS = 366


@dataclass(frozen=True)
class ForecastInvoice:
    subscription_id: int
    customer_id: int
    currency: str
    issue_at: datetime
    # The renewal decision's kind (continue, convert_trial, end) and the invoice's billing reason.
    kind: str
    billing_reason: str
    total: int


@dataclass(frozen=True)
class ForecastDay:
    day: date
    currency: str
    invoices: int
    total: int


def billing_forecast(*, now: datetime, days: int, currency: str | None = None) -> list[ForecastInvoice]:
    """The invoices the run will issue in [now, now + days), ordered by when, then subscription."""
    horizon = now + timedelta(days=days)
    # Mirrored subscriptions (billed by a merchant of record) are never invoiced by the run.
    subscriptions = list(Subscription.objects.filter(status__in=FORECAST_STATUSES, current_period_end__lt=horizon,
                                                     billed_by="",
                                                     **({"customer__currency": currency} if currency else {}))
                         .select_related("customer", "plan", "scheduled_plan").order_by("pk"))
    catalog = catalog_load()
    usage = usage_aggregate_many(
        windows=[UsageWindow(customer_id=s.customer_id, start=s.current_period_start,
                             end=min(s.current_period_end, now)) for s in subscriptions],
        meter_ids=[p.meter_id for prices in catalog.prices.values() for p in prices])
    orders = defaultdict(list)
    for order in CreditPackOrder.objects.filter(status=CreditPackOrderStatus.PENDING,
                                                customer_id__in=[s.customer_id for s in subscriptions]).order_by("pk"):
        orders[order.customer_id].append(order)
    usage_of: dict[int, dict] = defaultdict(dict)
    for (customer_id, meter_id), value in usage.items():
        usage_of[customer_id][meter_id] = value
    invoices = []
    for subscription in subscriptions:
        invoices += _subscription_forecast(subscription=copy.copy(subscription), now=now, horizon=horizon,
                                           catalog=catalog, first_usage=usage_of[subscription.customer_id],
                                           orders=orders[subscription.customer_id])
    return sorted(invoices, key=lambda i: (i.issue_at, i.subscription_id))


def _window_usage(*, customer_id: int, step: "ForecastStep") -> dict:
    """Usage already recorded in a later window (a subscription several periods behind): one query."""
    start, end = step.usage_window
    found = usage_aggregate_many(windows=[UsageWindow(customer_id=customer_id, start=start, end=end)],
                                 meter_ids=[p.meter_id for p in step.prices])
    return {meter: value for (_, meter), value in found.items()}


@dataclass(frozen=True)
class ForecastStep:
    """One renewal of a walked subscription: what the run decides at `issue_at` and which usage it bills."""

    issue_at: datetime
    decision: RenewalDecision
    # The meter prices of the plan the period was on (the usage billed in arrears is priced by them).
    prices: list[MeterPrice]
    # The window whose usage recorded so far the invoice bills: the current period's for the first step,
    # a later period's only when it began before now (none is recorded yet otherwise); None for none.
    usage_window: tuple[datetime, datetime] | None
    first: bool


def forecast_steps(*, subscription, now: datetime, horizon: datetime, catalog: Catalog) -> Iterator[ForecastStep]:
    """Walk one subscription (an unsaved copy, or any object with its attributes: it is moved forward in
    place) through its renewals up to the horizon. Usage does not change a decision, so the steps are
    known before any usage is read."""
    sub, first = subscription, True
    while sub.current_period_end < horizon:
        issue_at = max(sub.current_period_end, now)
        decision = renewal_decide(subscription=sub, at=issue_at)
        if not (decision.renews or decision.ends):
            break
        if first:
            window = (sub.current_period_start, min(sub.current_period_end, now))
        elif decision.usage_start is None or decision.usage_start >= now:
            window = None
        else:
            window = (decision.usage_start, min(decision.usage_end, now))
        yield ForecastStep(issue_at=issue_at, decision=decision, prices=catalog.prices.get(sub.plan_id, []),
                           usage_window=window, first=first)
        if decision.ends:
            break
        sub.plan, sub.plan_id = decision.plan, decision.plan.pk
        sub.scheduled_plan, sub.scheduled_plan_id = None, None
        sub.current_period_start, sub.current_period_end = decision.period_start, decision.period_end
        sub.billing_cycle_anchor = decision.anchor
        sub.status = decision.to_status or sub.status
        first = False


def forecast_step_total(*, step: ForecastStep, usage: dict, orders: list[CreditPackOrder]) -> int | None:
    """The step's invoice total, None when it issues no invoice (no line). `orders` are the pending credit
    packs its first invoice bills (already narrowed to the invoice's currency and the period)."""
    specs = decision_lines(decision=step.decision, prices=step.prices, usage=usage)
    if step.first:
        specs += credit_pack_lines(orders=orders)
    return invoice_total(subtotal=lines_subtotal(specs)) if specs else None


def _subscription_forecast(*, subscription: Subscription, now: datetime, horizon: datetime, catalog: Catalog,
                           first_usage: dict, orders: list[CreditPackOrder]) -> list[ForecastInvoice]:
    """Walk one (unsaved) subscription through its renewals up to the horizon. The first period's usage
    comes read in bulk; a later period that began before now has its usage so far read on its own, and
    one that begins later has none yet."""
    sub, found = subscription, []
    currency, period_end = sub.customer.currency, sub.current_period_end
    billed = [o for o in orders if o.currency == currency and o.created_at < period_end]
    for step in forecast_steps(subscription=sub, now=now, horizon=horizon, catalog=catalog):
        usage = first_usage
        if not step.first:
            usage = {} if step.usage_window is None else _window_usage(customer_id=sub.customer_id, step=step)
        total = forecast_step_total(step=step, usage=usage, orders=billed)
        if total is not None:
            found.append(ForecastInvoice(
                subscription_id=sub.pk, customer_id=sub.customer_id, currency=currency, issue_at=step.issue_at,
                kind=step.decision.kind, billing_reason=step.decision.billing_reason, total=total))
    return found


def forecast_by_day(*, invoices: list[ForecastInvoice]) -> list[ForecastDay]:
    """Invoices and their total per UTC day and currency."""
    grouped: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0])
    for invoice in invoices:
        figures = grouped[(invoice.issue_at.date(), invoice.currency)]
        figures[0] += 1
        figures[1] += invoice.total
    return [ForecastDay(day=day, currency=currency, invoices=n, total=total)
            for (day, currency), (n, total) in sorted(grouped.items())]
