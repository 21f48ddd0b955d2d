"""Resuming a paused subscription, with what that means for its billing periods.

Nothing is billed while paused (the run skips paused subscriptions). Resumed before its period ends,
a subscription simply carries on: the customer already paid for that period and it renews at its usual
date. Resumed after its period ended, the cycle restarts at the resume instant: the billing cycle anchor
moves there, the new period is invoiced at once (plan fee in advance, plus the usage of the period in
which it was paused, in arrears) and the plan's credits are refilled. The paused stretch in between is
neither charged nor credited."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing_project.audit import Actor
from credits.models import CreditSource
from credits.services import GrantSpec, credit_grants_bulk, credit_refill_key
from payments.billing.invoicing import InvoiceDraft, invoices_issue
from payments.billing.lines import period_lines
from payments.billing.renewals import REFILL_PRIORITY
from payments.models import BillingReason, Invoice
from subscriptions.models import SubscriptionEventKind, SubscriptionStatus
from subscriptions.periods import period_boundary
from subscriptions.services import (
    subscription_event_write,
    subscription_lock,
    subscription_resume,
    subscription_transition,
)
from usage.models import MeterPrice
from usage.selectors import usage_aggregate


@transaction.atomic
def subscription_resume_billed(*, subscription, actor: Actor, reason: str = "",
                               now: datetime | None = None) -> Invoice | None:
    """Resume (or withdraw a scheduled cancellation); returns the invoice a restarted cycle issued."""
    now = now or timezone.now()
    sub = subscription_lock(subscription_id=subscription.pk)
    if sub.status != SubscriptionStatus.PAUSED:
        subscription_resume(subscription=sub, actor=actor, reason=reason, now=now)
        return None
    subscription_transition(subscription=sub, to_status=SubscriptionStatus.ACTIVE, actor=actor,
                            reason=reason or "resumed", now=now)
    if sub.current_period_end > now:
        return None
    plan = sub.scheduled_plan or sub.plan
    old_start, old_end = sub.current_period_start, sub.current_period_end
    new_end = period_boundary(anchor=now, interval=plan.interval, interval_count=plan.interval_count, periods=1)
    prices = list(MeterPrice.objects.filter(plan=sub.plan).select_related("meter"))
    usage = {p.meter_id: usage_aggregate(customer=sub.customer, meter=p.meter, start=old_start, end=old_end)
             for p in prices}
    lines = period_lines(fee_plan=plan, fee_start=now, fee_end=new_end, prices=prices, usage=usage,
                         usage_start=old_start, usage_end=old_end)
    invoices = invoices_issue(drafts=[InvoiceDraft(
        customer_id=sub.customer_id, currency=sub.customer.currency, subscription_id=sub.pk,
        billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start=now, period_end=new_end, lines=lines,
        metadata={"resumed": True})], actor=actor, now=now) if lines else []
    from_plan = sub.plan
    sub.plan, sub.scheduled_plan = plan, None
    sub.billing_cycle_anchor, sub.current_period_start, sub.current_period_end = now, now, new_end
    sub.save(update_fields=["plan", "scheduled_plan", "billing_cycle_anchor", "current_period_start",
                            "current_period_end", "updated_at"])
    if from_plan.pk != plan.pk:
        subscription_event_write(subscription=sub, kind=SubscriptionEventKind.PLAN_CHANGED, actor=actor,
                                 from_plan=from_plan, to_plan=plan, reason="scheduled plan change applied")
    subscription_event_write(subscription=sub, kind=SubscriptionEventKind.RENEWED, actor=actor,
                             from_status=sub.status, to_status=sub.status, reason="cycle restarted on resume",
                             data={"period_start": now.isoformat(), "period_end": new_end.isoformat(),
                                   "invoice_id": invoices[0].pk if invoices else None})
    if plan.credits_per_period > 0:
        credit_grants_bulk(specs=[GrantSpec(
            customer_id=sub.customer_id, amount=plan.credits_per_period, effective_at=now,
            expires_at=None if plan.credits_rollover else new_end,
            idempotency_key=credit_refill_key(subscription_id=sub.pk, period_start=now),
            reason=f"{plan.name} credits for the period from {now:%Y-%m-%d}")],
            source=CreditSource.PLAN_REFILL, actor=actor, priority=REFILL_PRIORITY)
    return Invoice.objects.get(pk=invoices[0].pk) if invoices else None
