"""Steps 1 and 2 of the run: trials that end, and subscriptions whose period ends.

A batch claims due subscriptions with `select_for_update(skip_locked=True)` in primary-key order and,
in its own transaction, for each one either ends it (cancel at period end, or a trial that cannot be
paid) or moves it into its next period: apply a scheduled downgrade, issue the period invoice (plan fee
in advance, the past period's usage in arrears), refill the plan's credits. Every write is a bulk
statement, so a batch costs the same number of queries whatever its size. A subscription several
periods behind is claimed again by a later batch, one period at a time, each period invoiced once."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from core.audit import Actor
from core.bulk import array_of, ids_reserve
from core.collector import cyclic_collection_deferred
from credits.services import GrantSpec, credit_refill_spec, credit_refills_bulk
from payments.billing.common import StepCounts, batch_transaction_tune
from payments.billing.decision import RenewalDecision, decision_lines, renewal_decide
from payments.billing.dunning import FirstAttemptsFailed, first_attempt_failed_at_issue
from payments.billing.invoicing import FirstAttempt, InvoiceDraft, invoices_issuing
from payments.billing.lines import Catalog, credit_pack_lines
from payments.models import CreditPackOrder, CreditPackOrderStatus, Invoice
from payments.selectors.provider_accounts import HAS_SAVED_METHOD, saved_payment_method_exists
from payments.services.credit_pack_order_transitions import credit_pack_orders_transition_many
from payments.services.money_rollups import money_rollups_plan_move
from subscriptions.models import Plan, Subscription, SubscriptionEventKind, SubscriptionStatus
from subscriptions.services import EventSpec, PeriodChange, StatusMove, subscription_periods_move_many
from usage.models import MeterPrice
from usage.selectors import UsageWindow, usage_aggregate_many

S = SubscriptionStatus
TRIALS = "trials"
RENEWALS = "renewals"

def subscriptions_due(*, step: str, as_of: datetime):
    # Subscriptions a merchant of record bills (`billed_by`) are only mirrored: never renewed, invoiced or
    # ended by the run; their rail's webhooks move them.
    due = Subscription.objects.filter(current_period_end__lte=as_of, billed_by="")
    if step == TRIALS:
        return due.filter(status=S.TRIALING)
    # Paused subscriptions are skipped (nothing is billed while paused); incomplete ones wait for their
    # first payment and are canceled by dunning if it never comes.
    return due.filter(status__in=[S.ACTIVE, S.PAST_DUE])


@dataclass(slots=True)
class ClaimedSubscription:
    """A claimed subscription as a renewal batch reads it: the claiming query's columns as plain values.
    Building a Subscription and a Customer model instance per row cost about a quarter of the run's CPU
    (bench/billing_run.py); `renewal_decide` and the batch read these attributes exactly as they would
    read the model's."""

    pk: int
    customer_id: int
    plan_id: int
    scheduled_plan_id: int | None
    status: str
    billing_cycle_anchor: datetime
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    # The customer's currency: the invoice's, and the one its pending credit pack orders must be in.
    currency: str
    # HAS_SAVED_METHOD, the claiming query's annotation (trial conversion, first collection attempt).
    customer_has_saved_payment_method: bool
    plan: Plan | None = None
    scheduled_plan: Plan | None = None
    # Never loaded: every reader of a claim (row_has_saved_payment_method) uses the annotation above.
    customer: None = None


@dataclass
class _Change:
    """The new period of one claimed subscription, written for the whole batch at once with its status
    moves (`subscription_periods_move_many`)."""

    subscription: ClaimedSubscription
    plan_id: int
    current_period_start: datetime
    current_period_end: datetime


def _usage_by_customer(*, subscriptions: list[ClaimedSubscription], prices: dict[int, list[MeterPrice]],
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


def _pending_orders_by_subscription(*, subscriptions: list[ClaimedSubscription]) -> dict[int, list[CreditPackOrder]]:
    """The pending on-account orders each subscription's renewal bills, read and locked (primary-key order)
    for the whole batch in one query: those placed before the period ended, in the invoice's currency.
    The lock makes a concurrent cancel wait for the batch and then find the order invoiced."""
    by_customer = {s.customer_id: s for s in subscriptions}
    orders = (CreditPackOrder.objects.select_for_update()
              .filter(customer_id__in=array_of(by_customer), status=CreditPackOrderStatus.PENDING,
                      created_at__lt=max(s.current_period_end for s in subscriptions))
              .only("id", "customer_id", "pack_code", "credits", "amount", "currency", "status", "created_at")
              .order_by("pk"))
    billed: dict[int, list[CreditPackOrder]] = {}
    for order in orders:
        sub = by_customer[order.customer_id]
        if order.created_at < sub.current_period_end and order.currency == sub.currency:
            billed.setdefault(sub.pk, []).append(order)
    return billed


# What a batch reads of a subscription and its customer, in ClaimedSubscription's order; nothing else loads.
_CLAIMED_COLUMNS = ("id", "customer_id", "plan_id", "scheduled_plan_id", "status", "billing_cycle_anchor",
                    "current_period_start", "current_period_end", "cancel_at_period_end", "customer__currency",
                    HAS_SAVED_METHOD)


def _claim(*, step: str, as_of: datetime, batch_size: int, after_pk: int,
           catalog: Catalog) -> list[ClaimedSubscription]:
    """Lock (SKIP LOCKED, primary-key order) and read the next due subscriptions after `after_pk`."""
    rows = (subscriptions_due(step=step, as_of=as_of).filter(pk__gt=after_pk)
            # Whether each customer has a saved payment method, in the claiming query.
            .annotate(**{HAS_SAVED_METHOD: saved_payment_method_exists()})
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("pk").values_list(*_CLAIMED_COLUMNS)[:batch_size])
    claims = [ClaimedSubscription(*row) for row in rows]
    for claim in claims:
        claim.plan = catalog.plan(claim.plan_id)
        claim.scheduled_plan = catalog.plan(claim.scheduled_plan_id) if claim.scheduled_plan_id else None
    return claims


def renewal_batch(*, step: str, as_of: datetime, batch_size: int, actor: Actor, catalog: Catalog,
                  after_pk: int = 0, settle_first_attempts: bool = False) -> StepCounts | None:
    """Claim and handle, in its own transaction, one batch of due subscriptions with pk > `after_pk`;
    None when there is nothing left to claim.

    `settle_first_attempts` (the run's collection step runs after this one): an invoice whose customer
    has no saved payment method at any rail is issued with its first collection attempt already failed
    (payments.billing.dunning.first_attempt_failed_at_issue), which is what the collection step would
    record for it, without claiming, updating and committing it a second time."""
    with cyclic_collection_deferred(), transaction.atomic():
        batch_transaction_tune()
        subscriptions = _claim(step=step, as_of=as_of, batch_size=batch_size, after_pk=after_pk, catalog=catalog)
        if not subscriptions:
            return None
        counts = _handle(step=step, subscriptions=subscriptions, as_of=as_of, actor=actor, prices=catalog.prices,
                         settle_first_attempts=settle_first_attempts)
        counts.last_pk = subscriptions[-1].pk
        return counts


def _handle(*, step: str, subscriptions: list[ClaimedSubscription], as_of: datetime, actor: Actor,
            prices: dict[int, list[MeterPrice]], settle_first_attempts: bool) -> StepCounts:
    """Act on each claimed subscription's renewal decision (payments.billing.decision), in bulk."""
    counts = StepCounts()
    usage = _usage_by_customer(subscriptions=subscriptions, prices=prices, step=step)
    orders = _pending_orders_by_subscription(subscriptions=subscriptions)
    batch = _Batch(first_attempt=first_attempt_failed_at_issue(as_of=as_of) if settle_first_attempts else None)
    for sub in subscriptions:
        decision = renewal_decide(subscription=sub, at=as_of)
        if not (decision.renews or decision.ends):
            continue  # claimed as due, so never; a decision to wait is still obeyed
        lines = decision_lines(decision=decision, prices=prices.get(sub.plan_id, []),
                               usage=usage.get(sub.customer_id, {}))
        # Pending orders are billed even by a final invoice or a free plan's renewal.
        lines += credit_pack_lines(orders=orders.get(sub.pk, []))
        batch.add(subscription=sub, decision=decision, lines=lines)
        if decision.ends:
            counts.add("trials_canceled" if step == TRIALS else "canceled")
        else:
            counts.add("trials_converted" if step == TRIALS else "renewed")
    return batch.write(orders=orders, as_of=as_of, actor=actor, counts=counts)


@dataclass
class _Batch:
    """Everything a batch of decisions writes, collected row by row and written one statement per table."""

    # What an invoice to a customer with no saved payment method is issued with (None: not settled here).
    first_attempt: FirstAttempt | None = None
    changes: list[_Change] = field(default_factory=list)
    drafts: dict[int, InvoiceDraft] = field(default_factory=dict)
    grants: list[GrantSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    moves: list[StatusMove] = field(default_factory=list)

    def add(self, *, subscription: ClaimedSubscription, decision: RenewalDecision, lines: list) -> None:
        sub = subscription
        if lines:
            # invoice_collect answers no_payment_method without calling anyone for a customer with nothing
            # saved at any rail; the others stay due at issue for the collection step.
            unchargeable = not sub.customer_has_saved_payment_method
            self.drafts[sub.pk] = InvoiceDraft(
                customer_id=sub.customer_id, currency=sub.currency, subscription_id=sub.pk,
                billing_reason=decision.billing_reason, period_start=decision.period_start,
                period_end=decision.period_end, lines=lines, metadata={"final": True} if decision.ends else {},
                first_attempt=self.first_attempt if unchargeable else None)
        if decision.to_status:
            self.moves.append(StatusMove(subscription_id=sub.pk, to_status=decision.to_status,
                                         reason=decision.reason))
        if decision.ends:
            self.changes.append(_Change(subscription=sub, plan_id=sub.plan_id,
                                        current_period_start=sub.current_period_start,
                                        current_period_end=sub.current_period_end))
            return
        plan, start, end = decision.plan, decision.period_start, decision.period_end
        refill = credit_refill_spec(subscription_id=sub.pk, customer_id=sub.customer_id, plan=plan,
                                    period_start=start, period_end=end)
        if refill is not None:
            self.grants.append(refill)
        self.changes.append(_Change(subscription=sub, plan_id=plan.pk, current_period_start=start,
                                    current_period_end=end))
        new_status = decision.to_status or sub.status
        if plan.pk != sub.plan_id:
            self.events.append(EventSpec(
                subscription_id=sub.pk, kind=SubscriptionEventKind.PLAN_CHANGED, from_plan_id=sub.plan_id,
                to_plan_id=plan.pk, from_status=sub.status, to_status=new_status,
                reason="scheduled plan change applied"))
        self.events.append(EventSpec(subscription_id=sub.pk, kind=SubscriptionEventKind.RENEWED, from_status=sub.status,
                                     to_status=new_status,
                                     data={"period_start": start.isoformat(), "period_end": end.isoformat()}))

    def write(self, *, orders: dict[int, list[CreditPackOrder]], as_of: datetime, actor: Actor,
              counts: StepCounts) -> StepCounts:
        drafts = self.drafts
        invoice_ids = dict(zip(drafts, ids_reserve(model=Invoice, count=len(drafts)), strict=True))
        # The invoices are written first and numbered when the block ends, last in the transaction, so the
        # year's number counter is locked only for the end of the batch.
        with invoices_issuing(drafts=list(drafts.values()), actor=actor, now=as_of,
                              ids=list(invoice_ids.values())) as invoices:
            failed = FirstAttemptsFailed.of(invoices=invoices, drafts=drafts)
            counts.add("refilled", credit_refills_bulk(specs=self.grants, actor=actor))
            self._orders_invoice(orders=orders, invoice_ids=invoice_ids, actor=actor, counts=counts)
            # A subscription that ends, ends at the close of its last period, not at the run's clock; one
            # whose invoice's first attempt failed becomes past due after any other move (a converted trial).
            self._subscriptions_write(invoice_ids=invoice_ids, moves=self.moves + failed.past_due_moves(),
                                      actor=actor, now=as_of)
            failed.notify()
        counts.add("invoiced", len(invoices))
        if failed.invoice_ids:
            counts.add("failed", len(failed.invoice_ids))
        return counts

    def _subscriptions_write(self, *, invoice_ids: dict[int, int], moves: list[StatusMove], actor: Actor,
                             now: datetime) -> None:
        """Each subscription's new plan, period and status in one UPDATE, its audit rows in one COPY."""
        for row in self.events:
            if row.kind == SubscriptionEventKind.RENEWED:
                row.data["invoice_id"] = invoice_ids.get(row.subscription_id)
        changes = self.changes
        # Revenue by plan keys a subscription's history by its plan today: the batch's plan changes move it.
        moved = [c.subscription.pk for c in changes if c.plan_id != c.subscription.plan_id]
        with money_rollups_plan_move(subscription_ids=moved):
            subscription_periods_move_many(
                changes=[PeriodChange(subscription_id=c.subscription.pk, status=c.subscription.status,
                                      plan_id=c.plan_id, current_period_start=c.current_period_start,
                                      current_period_end=c.current_period_end) for c in changes],
                moves=moves, events=self.events, actor=actor, now=now)

    def _orders_invoice(self, *, orders: dict[int, list[CreditPackOrder]], invoice_ids: dict[int, int],
                        actor: Actor, counts: StepCounts) -> None:
        billed = {order.pk: invoice_ids[sub_pk] for sub_pk in self.drafts for order in orders.get(sub_pk, [])}
        if not billed:
            return
        invoiced = credit_pack_orders_transition_many(
            orders=[order for sub_pk in self.drafts for order in orders.get(sub_pk, [])],
            to_status=CreditPackOrderStatus.INVOICED, actor=actor, reason="billed on the renewal invoice",
            invoice_ids=billed)
        counts.add("credit_packs_invoiced", len(invoiced))
