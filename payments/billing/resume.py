"""Resuming a paused subscription, with what that means for its billing periods: the one resume that the
API and the back office call.

Nothing is billed while paused (the run skips paused subscriptions). What resuming does is the renewal
decision's (payments.billing.decision) for a paused subscription at the resume instant: resumed before
its period ends, it simply carries on (the customer already paid for that period and it renews at its
usual date); resumed after its period ended, the cycle restarts at the resume instant: the billing cycle
anchor moves there, the new period is invoiced at once (plan fee in advance, plus the usage of the
period in which it was paused, in arrears) and the plan's credits are refilled. The paused stretch in
between is neither charged nor credited. One that was set to cancel at period end and whose period
ended while paused ends instead (its last period's usage invoiced in arrears)."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.audit import Actor
from credits.services import credit_refill_spec, credit_refills_bulk
from payments.billing.decision import RenewalDecision, RenewalKind, decision_lines, renewal_decide
from payments.billing.invoicing import InvoiceDraft, invoices_issue
from payments.models import Invoice
from payments.services.money_rollups import money_rollups_plan_move
from subscriptions.models import Subscription, SubscriptionEventKind, SubscriptionStatus
from subscriptions.services import (
    subscription_event_write,
    subscription_lock,
    subscription_refuse_mirrored,
    subscription_resume,
    subscription_transition,
)
from usage.models import MeterPrice
from usage.selectors import usage_aggregate


@transaction.atomic
def subscription_resume_billed(*, subscription: Subscription, actor: Actor, reason: str = "",
                               now: datetime | None = None) -> Invoice | None:
    """Resume (or withdraw a scheduled cancellation); returns the invoice a restarted cycle (or an end)
    issued, if any."""
    now = now or timezone.now()
    sub = subscription_lock(subscription_id=subscription.pk)
    subscription_refuse_mirrored(sub)
    if sub.status != SubscriptionStatus.PAUSED:
        subscription_resume(subscription=sub, actor=actor, reason=reason, now=now)
        return None
    decision = renewal_decide(subscription=sub, at=now, resuming=True)
    if decision.kind == RenewalKind.WAIT:
        subscription_transition(subscription=sub, to_status=SubscriptionStatus.ACTIVE, actor=actor,
                                reason=reason or "resumed", now=now)
        return None
    invoice = _invoice_issue(subscription=sub, decision=decision, actor=actor, now=now)
    subscription_transition(subscription=sub, to_status=decision.to_status, actor=actor, now=now,
                            reason=reason or decision.reason)
    if decision.kind == RenewalKind.RESTART:
        _cycle_restart(subscription=sub, decision=decision, actor=actor, invoice=invoice)
    return Invoice.objects.get(pk=invoice.pk) if invoice else None


def _invoice_issue(*, subscription: Subscription, decision: RenewalDecision, actor: Actor,
                   now: datetime) -> Invoice | None:
    sub = subscription
    prices = list(MeterPrice.objects.filter(plan=sub.plan).select_related("meter"))
    usage = {p.meter_id: usage_aggregate(customer=sub.customer, meter=p.meter, start=decision.usage_start,
                                         end=decision.usage_end) for p in prices}
    lines = decision_lines(decision=decision, prices=prices, usage=usage)
    if not lines:
        return None
    issued = invoices_issue(drafts=[InvoiceDraft(
        customer_id=sub.customer_id, currency=sub.customer.currency, subscription_id=sub.pk,
        billing_reason=decision.billing_reason, period_start=decision.period_start, period_end=decision.period_end,
        lines=lines, metadata={"resumed": True} if decision.renews else {"final": True})], actor=actor, now=now)
    return Invoice.objects.get(pk=issued[0].pk)


def _cycle_restart(*, subscription: Subscription, decision: RenewalDecision, actor: Actor,
                   invoice: Invoice | None) -> None:
    sub, plan, start, end = subscription, decision.plan, decision.period_start, decision.period_end
    from_plan = sub.plan
    sub.plan, sub.scheduled_plan = plan, None
    sub.billing_cycle_anchor, sub.current_period_start, sub.current_period_end = decision.anchor, start, end
    with money_rollups_plan_move(subscription_ids=[sub.pk] if from_plan.pk != plan.pk else []):
        sub.save(update_fields=["plan", "scheduled_plan", "billing_cycle_anchor", "current_period_start",
                                "current_period_end", "updated_at"])
    if from_plan.pk != plan.pk:
        subscription_event_write(subscription=sub, kind=SubscriptionEventKind.PLAN_CHANGED, actor=actor,
                                 from_plan=from_plan, to_plan=plan, reason="scheduled plan change applied")
    subscription_event_write(subscription=sub, kind=SubscriptionEventKind.RENEWED, actor=actor,
                             from_status=sub.status, to_status=sub.status, reason=decision.reason,
                             data={"period_start": start.isoformat(), "period_end": end.isoformat(),
                                   "invoice_id": invoice.pk if invoice else None})
    refill = credit_refill_spec(subscription_id=sub.pk, customer_id=sub.customer_id, plan=plan,
                                period_start=start, period_end=end)
    if refill is not None:
        credit_refills_bulk(specs=[refill], actor=actor)
