"""Flows that span apps: starting a subscription (with its first invoice) and changing its plan (with a
prorated invoice)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import IllegalTransition, InvalidOperation
from credits.services import credit_plan_refill
from payments.models import BillingReason, Invoice, InvoiceLineKind
from payments.services.invoices import LineSpec, invoice_create, invoice_finalize
from payments.services.money_rollups import money_rollups_plan_move
from subscriptions.models import Customer, Plan, Subscription, SubscriptionEventKind, SubscriptionStatus
from subscriptions.periods import months_per_period
from subscriptions.services import (
    subscription_create,
    subscription_event_write,
    subscription_lock,
    subscription_refuse_mirrored,
)


def plan_period_line(*, plan: Plan, start: datetime, end: datetime) -> LineSpec:
    return LineSpec(kind=InvoiceLineKind.SUBSCRIPTION, description=f"{plan.name} ({start:%Y-%m-%d} - {end:%Y-%m-%d})",
                    unit_amount=Decimal(plan.amount), period_start=start, period_end=end,
                    metadata={"plan": plan.code})

@transaction.atomic
def subscription_start(*, customer: Customer, plan: Plan, actor: Actor, now: datetime | None = None,
                       with_trial: bool = True) -> tuple[Subscription, Invoice | None]:
    """Subscribe a customer. A paid plan without a trial issues its first invoice at once; the
    subscription stays incomplete until that invoice is paid."""
    now = now or timezone.now()
    subscription = subscription_create(customer=customer, plan=plan, actor=actor, now=now, with_trial=with_trial)
    if subscription.status != SubscriptionStatus.INCOMPLETE:
        credit_plan_refill(subscription=subscription, actor=actor)
        return subscription, None
    invoice = invoice_create(
        customer=customer, subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_CREATE,
        period_start=subscription.current_period_start, period_end=subscription.current_period_end,
        lines=[plan_period_line(plan=plan, start=subscription.current_period_start,
                                end=subscription.current_period_end)],
    )
    invoice = invoice_finalize(invoice=invoice, actor=actor, now=now)
    subscription.refresh_from_db()
    return subscription, invoice


@dataclass(frozen=True)
class PlanChange:
    subscription: Subscription
    # "immediate" for upgrades (prorated now), "period_end" for downgrades (scheduled).
    effective: str
    effective_at: datetime
    invoice: Invoice | None
    proration_amount: int


# InvoiceLine.quantity has 6 decimal places; a prorated fraction is stored (and priced) at that precision.
PRORATION_QUANTUM = Decimal("0.000001")


def proration_fraction(*, remaining: timedelta, period: timedelta) -> Decimal:
    """remaining / period, clamped to [0, 1] and rounded half-up to PRORATION_QUANTUM, in integer
    microseconds throughout: `total_seconds()` is a float, whose error flips a fraction that lies exactly
    on a rounding boundary, and a large plan amount turns that into a wrong minor unit. Quantized before
    any amount is computed from it: the stored line must satisfy amount == round(quantity x unit_amount)
    (rounded once, by invoice_line_amount), which `billing verify` checks."""
    period_us = period // _MICROSECOND
    remaining_us = min(max(remaining // _MICROSECOND, 0), period_us)
    millionths, rest = divmod(remaining_us * 10**6, period_us)
    if 2 * rest >= period_us:
        millionths += 1
    return Decimal(millionths) * PRORATION_QUANTUM


_MICROSECOND = timedelta(microseconds=1)


def _period_rate(plan: Plan) -> Decimal:
    """Price per month, to compare plans of different intervals."""
    return Decimal(plan.amount) / months_per_period(interval=plan.interval, interval_count=plan.interval_count)


def _plan_inactive(plan: Plan) -> InvalidOperation:
    return InvalidOperation(_("Plan %(plan)s takes no new subscriptions.") % {"plan": plan.code}, code="plan_inactive")


def _plan_change_check(*, subscription: Subscription, old_plan: Plan, new_plan: Plan) -> None:
    """Refuse a plan change the subscription's state or the two plans do not allow."""
    if not subscription.is_live:
        raise IllegalTransition(_("A canceled subscription cannot change plan."), code="subscription_canceled")
    if subscription.status == SubscriptionStatus.INCOMPLETE:
        # Its first invoice is unpaid: a zero-net proration invoice would settle and activate it unpaid.
        raise IllegalTransition(_("Pay the first invoice before changing plan."), code="subscription_incomplete")
    if subscription.status == SubscriptionStatus.PAUSED:
        # Nothing is billed while paused, so nothing can be prorated; resuming first makes the period real.
        raise IllegalTransition(_("Resume the subscription before changing plan."), code="subscription_paused")
    if new_plan.pk == old_plan.pk:
        # A conflict with the current state (often a concurrent change that won), not bad input.
        raise IllegalTransition(_("The subscription is already on this plan."), code="same_plan")
    if not new_plan.is_active:
        raise _plan_inactive(new_plan)
    if new_plan.currency != old_plan.currency:
        raise InvalidOperation(_("Plans in another currency cannot be switched to."), code="currency_mismatch")
    if new_plan.interval != old_plan.interval or new_plan.interval_count != old_plan.interval_count:
        raise InvalidOperation(_("Switching billing interval is not supported mid-period; cancel and resubscribe."),
                               code="interval_mismatch")


@transaction.atomic
def subscription_change_plan(*, subscription: Subscription, new_plan: Plan, actor: Actor,
                             now: datetime | None = None, reason: str = "") -> PlanChange:
    """Upgrades take effect now with a charge prorated to the second for the rest of the period, less
    the unused time of the old plan; downgrades wait for the period end."""
    now = now or timezone.now()
    subscription = subscription_refuse_mirrored(subscription_lock(subscription_id=subscription.pk))
    old_plan = subscription.plan
    _plan_change_check(subscription=subscription, old_plan=old_plan, new_plan=new_plan)

    if _period_rate(new_plan) < _period_rate(old_plan) and subscription.status != SubscriptionStatus.TRIALING:
        subscription.scheduled_plan = new_plan
        subscription.save(update_fields=["scheduled_plan", "updated_at"])
        subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.PLAN_CHANGE_SCHEDULED,
                                 actor=actor, reason=reason, from_plan=old_plan, to_plan=new_plan,
                                 from_status=subscription.status, to_status=subscription.status,
                                 data={"effective_at": subscription.current_period_end.isoformat()})
        return PlanChange(subscription=subscription, effective="period_end",
                          effective_at=subscription.current_period_end, invoice=None, proration_amount=0)

    invoice = None
    if subscription.status != SubscriptionStatus.TRIALING:
        start, end = subscription.current_period_start, subscription.current_period_end
        remaining = proration_fraction(remaining=end - max(now, start), period=end - start)
        lines = [
            LineSpec(kind=InvoiceLineKind.PRORATION, description=f"Unused time on {old_plan.name}",
                     unit_amount=-Decimal(old_plan.amount), quantity=remaining, period_start=now, period_end=end,
                     metadata={"plan": old_plan.code}),
            LineSpec(kind=InvoiceLineKind.PRORATION, description=f"Remaining time on {new_plan.name}",
                     unit_amount=Decimal(new_plan.amount), quantity=remaining, period_start=now, period_end=end,
                     metadata={"plan": new_plan.code}),
        ]
        invoice = invoice_create(customer=subscription.customer, subscription=subscription, lines=lines,
                                 billing_reason=BillingReason.SUBSCRIPTION_UPDATE, period_start=now, period_end=end)
        invoice = invoice_finalize(invoice=invoice, actor=actor, now=now)
    subscription.plan = new_plan
    subscription.scheduled_plan = None
    with money_rollups_plan_move(subscription_ids=[subscription.pk]):
        subscription.save(update_fields=["plan", "scheduled_plan", "updated_at"])
    subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.PLAN_CHANGED, actor=actor,
                             reason=reason, from_plan=old_plan, to_plan=new_plan, from_status=subscription.status,
                             to_status=subscription.status,
                             data={"invoice_id": invoice.pk if invoice else None})
    return PlanChange(subscription=subscription, effective="immediate", effective_at=now, invoice=invoice,
                      proration_amount=invoice.total if invoice else 0)
