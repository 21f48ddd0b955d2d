"""Past events the foundation's services cannot write yet, replayed for the demo history.

In production, renewals come from the billing run and card payments/refunds from Stripe webhooks,
both owned by other parts of payments. The demo needs months of history without either, so this
module replays what they record, with the same building blocks: `subscription_event_write`,
`invoice_create`/`invoice_finalize`, `payment_transition` and `payment_refund_apply`, so every row
carries its audit trail. Nothing here calls the network; the Stripe ids are fake (pi_demo...).
"""

from datetime import datetime, timedelta

from django.db import transaction

from billing_project.audit import Actor
from payments.models import BillingReason, Invoice, Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus
from payments.services import (
    invoice_create,
    invoice_finalize,
    invoice_lock,
    payment_lock,
    payment_refund_apply,
    payment_transition,
    plan_period_line,
)
from subscriptions.models import Customer, Subscription, SubscriptionEventKind
from subscriptions.periods import period_containing
from subscriptions.services import subscription_event_write, subscription_lock

BILLING_RUN = Actor.system("billing-run")
STRIPE_WEBHOOK = Actor.system("stripe-webhook")
# When a declined card is tried again, as a dunning schedule would.
RETRY_AFTER = timedelta(days=3)


@transaction.atomic
def renew_for_history(*, subscription: Subscription, at: datetime) -> tuple[Subscription, Invoice | None]:
    """Move the subscription into its next period (a trial's end starts the first paid one) and, for a
    paid plan, issue that period's invoice at `at`. Collection and the credit refill are the caller's."""
    subscription = subscription_lock(subscription_id=subscription.pk)
    plan = subscription.plan
    start = subscription.current_period_end
    _, end = period_containing(anchor=subscription.billing_cycle_anchor, interval=plan.interval,
                               interval_count=plan.interval_count, instant=start)
    subscription.current_period_start, subscription.current_period_end = start, end
    subscription.save(update_fields=["current_period_start", "current_period_end", "updated_at"])
    subscription_event_write(subscription=subscription, kind=SubscriptionEventKind.RENEWED, actor=BILLING_RUN,
                             reason="period renewed", from_status=subscription.status, to_status=subscription.status,
                             data={"period_start": start.isoformat(), "period_end": end.isoformat()})
    if plan.is_free:
        return subscription, None
    invoice = invoice_create(customer=subscription.customer, subscription=subscription,
                             billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start=start, period_end=end,
                             lines=[plan_period_line(plan=plan, start=start, end=end)])
    return subscription, invoice_finalize(invoice=invoice, actor=BILLING_RUN, now=at)


@transaction.atomic
def card_payment(*, customer: Customer, invoice: Invoice, succeed: bool, at: datetime, payment_intent_id: str,
                 charge_id: str | None) -> Payment:
    """A PaymentIntent for the invoice's amount due that succeeded or was declined, as the webhooks
    would have recorded it."""
    payment = Payment.objects.create(customer=customer, invoice=invoice, amount=invoice.amount_due,
                                     currency=invoice.currency, method=PaymentMethod.STRIPE,
                                     stripe_payment_intent_id=payment_intent_id, provider_updated_at=at,
                                     metadata={"demo": True})
    payment = payment_lock(payment_id=payment.pk)
    payment_transition(payment=payment, to_status=PaymentStatus.PROCESSING, actor=STRIPE_WEBHOOK,
                       reason="payment_intent.processing", provider_data={"payment_intent": payment_intent_id},
                       now=at)
    if succeed:
        payment.stripe_charge_id = charge_id
        payment.save(update_fields=["stripe_charge_id", "updated_at"])
        return payment_transition(payment=payment, to_status=PaymentStatus.SUCCEEDED, actor=STRIPE_WEBHOOK,
                                  reason="payment_intent.succeeded", now=at + timedelta(seconds=3),
                                  provider_data={"payment_intent": payment_intent_id, "charge": charge_id})
    payment.failure_code, payment.failure_reason = "card_declined", "Your card has insufficient funds."
    payment.save(update_fields=["failure_code", "failure_reason", "updated_at"])
    payment_transition(payment=payment, to_status=PaymentStatus.FAILED, actor=STRIPE_WEBHOOK,
                       reason="payment_intent.payment_failed", now=at + timedelta(seconds=3),
                       provider_data={"payment_intent": payment_intent_id, "decline_code": "insufficient_funds"})
    invoice = invoice_lock(invoice_id=invoice.pk)
    invoice.attempt_count += 1
    invoice.next_attempt_at = at + RETRY_AFTER
    invoice.save(update_fields=["attempt_count", "next_attempt_at", "updated_at"])
    return payment


@transaction.atomic
def card_refund(*, payment: Payment, amount: int, actor: Actor, reason: str, at: datetime, refund_id: str) -> Refund:
    """A card refund Stripe has confirmed (charge.refunded), counted against its payment."""
    payment = payment_lock(payment_id=payment.pk)
    refund = Refund(payment=payment, amount=amount, currency=payment.currency, status=RefundStatus.SUCCEEDED,
                    stripe_refund_id=refund_id, idempotency_key=f"seed:{refund_id}", reason=reason[:500])
    refund.stamp(actor)
    refund.save()
    payment_refund_apply(payment=payment, amount=amount, actor=actor, reason=reason, now=at,
                         provider_data={"refund": refund_id})
    return refund
