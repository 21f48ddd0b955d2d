"""Steps 1 and 2 of the run: trials that end, and subscriptions whose period ends.

A batch claims due subscriptions with `select_for_update(skip_locked=True)` in primary-key order and,
in its own transaction, for each one either ends it (cancel at period end, or a trial that cannot be
paid) or moves it into its next period: apply a scheduled downgrade, issue the period invoice (plan fee
in advance, the past period's usage in arrears), refill the plan's credits. Every write is a bulk
statement, so a batch costs the same number of queries whatever its size. A subscription several
periods behind is claimed again by a later batch, one period at a time, each period invoiced once."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing_project.audit import Actor
from billing_project.bulk import ids_reserve
from credits.models import CreditSource
from credits.services import GrantSpec, credit_grants_bulk, credit_refill_key
from payments.billing.common import StepCounts, batch_transaction_tune, rows_update
from payments.billing.invoicing import InvoiceDraft, invoices_issue
from payments.billing.lines import Catalog, credit_pack_lines, period_lines
from payments.models import BillingReason, CreditPackOrder, CreditPackOrderStatus, Invoice
from payments.services.paid_invoice_effects import CREDIT_PACK_ORDERS_KEY
from subscriptions.models import Plan, Subscription, SubscriptionEventKind, SubscriptionStatus
from subscriptions.periods import period_containing
from subscriptions.services import EventSpec, subscription_events_write_many
from usage.models import MeterPrice
from usage.selectors import UsageWindow, usage_aggregate_many

S = SubscriptionStatus
TRIALS = "trials"
RENEWALS = "renewals"
# A refill is spent before purchased credits (priority 100): the same order `credit_plan_refill` uses.
REFILL_PRIORITY = 50


def subscriptions_due(*, step: str, as_of: datetime):
    due = Subscription.objects.filter(current_period_end__lte=as_of)
    if step == TRIALS:
        return due.filter(status=S.TRIALING)
    # Paused subscriptions are skipped (nothing is billed while paused); incomplete ones wait for their
    # first payment and are canceled by dunning if it never comes.
    return due.filter(status__in=[S.ACTIVE, S.PAST_DUE])


def trial_needs_cancel(*, subscription: Subscription, plan: Plan) -> bool:
    """A trial of a paid plan ends in cancellation when the customer has no way to pay."""
    if plan.is_free or not settings.BILLING_REQUIRE_PAYMENT_METHOD_FOR_TRIAL_CONVERSION:
        return False
    return not subscription.customer.stripe_default_payment_method_id


def next_period(*, subscription: Subscription, plan: Plan) -> tuple[datetime, datetime]:
    """The period that follows the current one, counted from the cycle anchor (Jan 31 -> Feb 28 -> Mar 31)."""
    start = subscription.current_period_end
    _, end = period_containing(anchor=subscription.billing_cycle_anchor, interval=plan.interval,
                               interval_count=plan.interval_count, instant=start)
    return start, end


@dataclass
class _Change:
    """The new state of one claimed subscription, written for the whole batch at once."""

    subscription: Subscription
    status: str
    plan_id: int
    current_period_start: datetime
    current_period_end: datetime
    ended_at: datetime | None = None


def _usage_by_customer(*, subscriptions: list[Subscription], prices: dict[int, list[MeterPrice]],
                       step: str) -> dict[int, dict[int, Decimal]]:
    if step == TRIALS:  # usage during a trial is free
        return {}
    windows = [UsageWindow(customer_id=s.customer_id, start=s.current_period_start, end=s.current_period_end)
               for s in subscriptions if prices.get(s.plan_id)]
    meter_ids = [p.meter_id for s in subscriptions for p in prices.get(s.plan_id, [])]
    usage: dict[int, dict[int, Decimal]] = {}
    for (customer_id, meter_id), quantity in usage_aggregate_many(windows=windows, meter_ids=meter_ids).items():
        usage.setdefault(customer_id, {})[meter_id] = quantity
    return usage


def _pending_orders_by_subscription(*, subscriptions: list[Subscription]) -> dict[int, list[CreditPackOrder]]:
    """The pending on-account orders each subscription's renewal bills, read and locked (primary-key order)
    for the whole batch in one query: those placed before the period ended, in the invoice's currency.
    The lock makes a concurrent cancel wait for the batch and then find the order invoiced."""
    by_customer = {s.customer_id: s for s in subscriptions}
    orders = (CreditPackOrder.objects.select_for_update()
              .filter(customer_id__in=list(by_customer), status=CreditPackOrderStatus.PENDING,
                      created_at__lt=max(s.current_period_end for s in subscriptions))
              .only("id", "customer_id", "pack_code", "credits", "amount", "currency", "created_at")
              .order_by("pk"))
    billed: dict[int, list[CreditPackOrder]] = {}
    for order in orders:
        sub = by_customer[order.customer_id]
        if order.created_at < sub.current_period_end and order.currency == sub.customer.currency:
            billed.setdefault(sub.pk, []).append(order)
    return billed


# What a batch reads of a subscription and its customer; everything else stays in the database.
_CLAIMED_FIELDS = ("id", "customer_id", "plan_id", "scheduled_plan_id", "status", "billing_cycle_anchor",
                   "current_period_start", "current_period_end", "cancel_at_period_end", "canceled_at", "ended_at",
                   "customer__currency", "customer__stripe_default_payment_method_id")


def _orders_metadata(orders: list[CreditPackOrder] | None, **extra) -> dict:
    """Invoice metadata naming the orders it bills, which is what tells settling it to grant them."""
    return {**extra, **({CREDIT_PACK_ORDERS_KEY: [o.pk for o in orders]} if orders else {})}


def renewal_batch(*, step: str, as_of: datetime, batch_size: int, actor: Actor, catalog: Catalog,
                  after_pk: int = 0) -> StepCounts | None:
    """Claim and handle, in its own transaction, one batch of due subscriptions with pk > `after_pk`;
    None when there is nothing left to claim."""
    with transaction.atomic():
        batch_transaction_tune()
        subscriptions = list(
            subscriptions_due(step=step, as_of=as_of).filter(pk__gt=after_pk)
            .select_related("customer").only(*_CLAIMED_FIELDS)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("pk")[:batch_size]
        )
        if not subscriptions:
            return None
        for sub in subscriptions:
            sub.plan = catalog.plan(sub.plan_id)
            sub.scheduled_plan = catalog.plan(sub.scheduled_plan_id) if sub.scheduled_plan_id else None
        counts = _handle(step=step, subscriptions=subscriptions, as_of=as_of, actor=actor, prices=catalog.prices)
        counts.last_pk = subscriptions[-1].pk
        return counts


def _handle(*, step: str, subscriptions: list[Subscription], as_of: datetime, actor: Actor,
            prices: dict[int, list[MeterPrice]]) -> StepCounts:
    counts = StepCounts()
    usage = _usage_by_customer(subscriptions=subscriptions, prices=prices, step=step)
    orders = _pending_orders_by_subscription(subscriptions=subscriptions)
    changes: list[_Change] = []
    drafts: dict[int, InvoiceDraft] = {}
    grants: list[GrantSpec] = []
    events: list[EventSpec] = []

    def event(subscription: Subscription, kind: str, **kwargs) -> None:
        events.append(EventSpec(subscription_id=subscription.pk, kind=kind, **kwargs))

    for sub in subscriptions:
        old_start, old_end = sub.current_period_start, sub.current_period_end
        if step == RENEWALS:
            arrears = dict(usage_start=old_start, usage_end=old_end, usage=usage.get(sub.customer_id, {}),
                           prices=prices.get(sub.plan_id, []))
        else:  # usage during a trial is free
            arrears = dict(usage_start=None, usage_end=None, usage={}, prices=[])
        new_plan = sub.scheduled_plan or sub.plan
        ending = sub.cancel_at_period_end or (step == TRIALS and trial_needs_cancel(subscription=sub, plan=new_plan))
        if ending:
            # The last period's usage is still owed: a final invoice in arrears, without a plan fee.
            # So are the credit packs ordered on account while it was live.
            lines = period_lines(fee_plan=None, fee_start=None, fee_end=None, **arrears)
            lines += credit_pack_lines(orders=orders.get(sub.pk, []))
            if lines:
                drafts[sub.pk] = InvoiceDraft(
                    customer_id=sub.customer_id, currency=sub.customer.currency, subscription_id=sub.pk,
                    billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start=old_end, period_end=old_end,
                    lines=lines, metadata=_orders_metadata(orders.get(sub.pk), final=True))
            changes.append(_Change(subscription=sub, status=S.CANCELED, plan_id=sub.plan_id,
                                   current_period_start=old_start, current_period_end=old_end, ended_at=old_end))
            why = ("canceled at period end" if sub.cancel_at_period_end
                   else "trial ended without a payment method")
            event(sub, SubscriptionEventKind.STATUS_CHANGED, from_status=sub.status, to_status=S.CANCELED,
                  reason=why)
            counts.add("trials_canceled" if step == TRIALS else "canceled")
            continue

        new_start, new_end = next_period(subscription=sub, plan=new_plan)
        lines = period_lines(fee_plan=new_plan, fee_start=new_start, fee_end=new_end, **arrears)
        # Pending orders make even a free plan's renewal issue an invoice.
        lines += credit_pack_lines(orders=orders.get(sub.pk, []))
        if lines:
            reason = BillingReason.SUBSCRIPTION_CREATE if step == TRIALS else BillingReason.SUBSCRIPTION_CYCLE
            drafts[sub.pk] = InvoiceDraft(
                customer_id=sub.customer_id, currency=sub.customer.currency, subscription_id=sub.pk,
                billing_reason=reason, period_start=new_start, period_end=new_end, lines=lines,
                metadata=_orders_metadata(orders.get(sub.pk)))
        if new_plan.credits_per_period > 0:
            grants.append(GrantSpec(
                customer_id=sub.customer_id, amount=new_plan.credits_per_period, effective_at=new_start,
                expires_at=None if new_plan.credits_rollover else new_end,
                idempotency_key=credit_refill_key(subscription_id=sub.pk, period_start=new_start),
                reason=f"{new_plan.name} credits for the period from {new_start:%Y-%m-%d}"))
        new_status = S.ACTIVE if step == TRIALS else sub.status
        changes.append(_Change(subscription=sub, status=new_status, plan_id=new_plan.pk,
                               current_period_start=new_start, current_period_end=new_end))
        if new_plan.pk != sub.plan_id:
            event(sub, SubscriptionEventKind.PLAN_CHANGED, from_plan_id=sub.plan_id, to_plan_id=new_plan.pk,
                  from_status=sub.status, to_status=new_status, reason="scheduled plan change applied")
        if new_status != sub.status:
            event(sub, SubscriptionEventKind.STATUS_CHANGED, from_status=sub.status, to_status=new_status,
                  reason="trial ended")
        event(sub, SubscriptionEventKind.RENEWED, from_status=sub.status, to_status=new_status,
              data={"period_start": new_start.isoformat(), "period_end": new_end.isoformat()})
        counts.add("trials_converted" if step == TRIALS else "renewed")

    invoice_ids = dict(zip(drafts, ids_reserve(model=Invoice, count=len(drafts)), strict=True))
    counts.add("refilled", credit_grants_bulk(specs=grants, source=CreditSource.PLAN_REFILL, actor=actor,
                                              priority=REFILL_PRIORITY))
    for row in events:
        if row.kind == SubscriptionEventKind.RENEWED:
            row.data["invoice_id"] = invoice_ids.get(row.subscription_id)
    subscription_events_write_many(events=events, actor=actor)
    billed = [(order.pk, invoice_ids[sub_pk]) for sub_pk in drafts for order in orders.get(sub_pk, [])]
    rows_update(model=CreditPackOrder, ids=[pk for pk, _ in billed],
                columns={"invoice_id": ("bigint", [invoice_id for _, invoice_id in billed])},
                constants={"status": CreditPackOrderStatus.INVOICED, "updated_at": timezone.now()})
    if billed:
        counts.add("credit_packs_invoiced", len(billed))
    rows_update(
        model=Subscription, ids=[c.subscription.pk for c in changes],
        columns={
            "status": ("text", [c.status for c in changes]),
            "plan_id": ("bigint", [c.plan_id for c in changes]),
            "current_period_start": ("timestamptz", [c.current_period_start for c in changes]),
            "current_period_end": ("timestamptz", [c.current_period_end for c in changes]),
            "ended_at": ("timestamptz", [c.ended_at or c.subscription.ended_at for c in changes]),
            "canceled_at": ("timestamptz", [
                (c.subscription.canceled_at or c.ended_at) if c.status == S.CANCELED else c.subscription.canceled_at
                for c in changes]),
            "cancel_at_period_end": ("boolean", [False if c.status == S.CANCELED else
                                                 c.subscription.cancel_at_period_end for c in changes]),
        },
        # A scheduled downgrade is used up by the renewal that applies it (or moot once canceled).
        constants={"scheduled_plan_id": None, "updated_at": timezone.now()},
    )
    # Last, so the invoice number counter is locked only for the end of the batch.
    invoices = invoices_issue(drafts=list(drafts.values()), actor=actor, now=as_of, ids=list(invoice_ids.values()))
    counts.add("invoiced", len(invoices))
    return counts
