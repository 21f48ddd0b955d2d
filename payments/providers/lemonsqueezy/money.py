"""Record what Lemon Squeezy collected for a mirrored subscription: one paid invoice and one payment per
period, the plan's credits once per period, and its refunds, whatever order or how many times the messages
arrive.

- The period a payment pays for is counted from the mirror's anchor (its creation, or its trial end) with
  the plan's interval, at the time Lemon Squeezy created the order or invoice (an initial order created a
  moment before its subscription counts as the first period). The invoice of a period is unique
  (invoice_one_per_subscription_period), so `order_created` and the initial `subscription_payment_success`,
  which are the same money, land on the same invoice and the same payment: the order's id is kept in
  `Payment.provider_payment_id`, the subscription invoice's in `Payment.provider_charge_id`.
- The invoice is issued open with no collection attempt scheduled (`next_attempt_at` empty), and dunning's
  selector skips mirrored subscriptions as well: we never charge it. A failed payment leaves it open.
- Credits are the plan's refill for that period, keyed by (subscription, period start) like the run's.
- Refunds: Lemon Squeezy reports how much of the money is refunded in total; we record the difference
  from what is already recorded, so a message repeated or overtaken by a later one never refunds twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from core.audit import Actor
from credits.models import PLAN_REFILL_PRIORITY, CreditSource
from credits.services import credit_grant, credit_refill_spec
from payments.models import (
    PERIOD_BILLING_REASONS,
    BillingReason,
    Invoice,
    InvoiceLineKind,
    Payment,
    PaymentMethod,
    PaymentStatus,
    ProviderSubscription,
    Refund,
    RefundStatus,
)
from payments.providers.base import RefundResult, external_refund_key
from payments.providers.lemonsqueezy.models import LEMONSQUEEZY
from payments.providers.lemonsqueezy.payloads import TYPE_ORDER, LSMoney
from payments.services import (
    LineSpec,
    invoice_create,
    invoice_finalize,
    invoice_lock,
    payment_create,
    payment_lock,
    payment_refund_apply,
    payment_transition,
    refund_counted,
    refund_transition,
)
from payments.services.paid_invoice_effects import payment_credit_entries_record
from subscriptions.models import Subscription
from subscriptions.periods import period_containing
from subscriptions.services import subscription_lock


@dataclass(frozen=True)
class MoneyResult:
    applied: bool
    note: str = ""


def money_period(*, mirror: ProviderSubscription, subscription: Subscription,
                 at: datetime) -> tuple[datetime, datetime]:
    plan = subscription.plan
    return period_containing(anchor=mirror.anchor, interval=plan.interval, interval_count=plan.interval_count,
                             instant=max(at, mirror.anchor))


def _period_invoice(*, subscription: Subscription, mirror: ProviderSubscription, money: LSMoney,
                    actor: Actor) -> Invoice:
    """The period's invoice, issued the first time with the amount Lemon Squeezy charged (tax included: it
    is the seller of record) and no collection attempt scheduled."""
    start, end = money_period(mirror=mirror, subscription=subscription, at=money.created_at or mirror.anchor)
    found = Invoice.objects.filter(subscription=subscription, period_start=start,
                                   billing_reason__in=PERIOD_BILLING_REASONS).first()
    if found is not None:
        return invoice_lock(invoice_id=found.pk)
    line = LineSpec(kind=InvoiceLineKind.SUBSCRIPTION, unit_amount=Decimal(money.total), period_start=start,
                    period_end=end, description=f"{subscription.plan.name} (billed by Lemon Squeezy, "
                                                f"{money.reference})")
    reason = BillingReason.SUBSCRIPTION_CREATE if start <= mirror.anchor else BillingReason.SUBSCRIPTION_CYCLE
    invoice = invoice_create(customer=subscription.customer, lines=[line], subscription=subscription,
                             billing_reason=reason, period_start=start, period_end=end,
                             note="Billed and collected by Lemon Squeezy, the merchant of record.")
    # The money is in the currency Lemon Squeezy charged, whatever the customer's usual one.
    Invoice.objects.filter(pk=invoice.pk).update(currency=money.currency or invoice.currency)
    invoice = invoice_finalize(invoice=invoice, actor=actor, now=money.created_at)
    # Nobody collects it but Lemon Squeezy: no dunning attempt is ever scheduled.
    Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=None)
    return invoice_lock(invoice_id=invoice.pk)


def _ids_remember(*, payment: Payment, money: LSMoney) -> bool:
    column = "provider_payment_id" if money.type == TYPE_ORDER else "provider_charge_id"
    if getattr(payment, column):
        return False
    setattr(payment, column, money.reference)
    payment.save(update_fields=[column, "updated_at"])
    return True


def _payment_record(*, invoice: Invoice, money: LSMoney, actor: Actor, reason: str) -> tuple[Payment, bool]:
    """The one payment of the period's invoice; recorded as succeeded the first time."""
    existing = Payment.objects.filter(invoice=invoice, provider=LEMONSQUEEZY).order_by("pk").first()
    if existing is not None:
        payment = payment_lock(payment_id=existing.pk)
        return payment, _ids_remember(payment=payment, money=money)
    payment = payment_create(
        customer_id=invoice.customer_id, invoice=invoice, amount=invoice.total, currency=invoice.currency,
        method=PaymentMethod.LEMONSQUEEZY, provider=LEMONSQUEEZY, collection_key=f"{LEMONSQUEEZY}-invoice-{invoice.pk}",
        description="Collected by Lemon Squeezy")
    _ids_remember(payment=payment, money=money)
    payment_transition(payment=payment, to_status=PaymentStatus.SUCCEEDED, actor=actor, reason=reason,
                       now=money.created_at, provider_data={"provider": LEMONSQUEEZY, "reference": money.reference})
    return payment_lock(payment_id=payment.pk), True


def _credits_award(*, subscription: Subscription, invoice: Invoice, payment: Payment, actor: Actor) -> bool:
    """The plan's credits for the invoice's period, once per period (the run's refill key)."""
    spec = credit_refill_spec(subscription_id=subscription.pk, customer_id=subscription.customer_id,
                              plan=subscription.plan, period_start=invoice.period_start,
                              period_end=invoice.period_end)
    if spec is None:
        return False
    write = credit_grant(customer=subscription.customer, amount=spec.amount, source=CreditSource.PLAN_REFILL,
                         actor=actor, priority=PLAN_REFILL_PRIORITY, effective_at=spec.effective_at,
                         expires_at=spec.expires_at, reason=spec.reason, idempotency_key=spec.idempotency_key)
    payment_credit_entries_record(payment_id=payment.pk, writes=[write])
    return not write.replayed


def refund_reference(*, payment: Payment) -> str | None:
    """Lemon Squeezy keeps one refunded total per order or invoice, listed for reconciliation as
    "<reference>-refund": the payment's first refund carries that id (a further partial one has none)."""
    reference = f"{payment.provider_charge_id or payment.provider_payment_id}-refund"
    taken = Refund.objects.filter(provider=LEMONSQUEEZY, provider_refund_id=reference).exists()
    return None if taken else reference


def _refunds_follow(*, payment: Payment, money: LSMoney, actor: Actor, reason: str) -> bool:
    """Bring our refunds of the payment up to the total Lemon Squeezy reports refunded."""
    # Refunds staff asked for through us count as soon as they are asked: their answer settles them.
    counted = [RefundStatus.REQUESTED, RefundStatus.PENDING, RefundStatus.SUCCEEDED]
    recorded = Refund.objects.filter(payment=payment, provider=LEMONSQUEEZY, status__in=counted) \
        .aggregate(total=Sum("amount"))["total"] or 0
    target = min(money.refunded_amount, payment.amount)
    if target <= recorded:
        return False
    refund = Refund(payment=payment, amount=target - recorded, currency=payment.currency, provider=LEMONSQUEEZY,
                    provider_refund_id=refund_reference(payment=payment), status=RefundStatus.SUCCEEDED,
                    reason=f"refunded in Lemon Squeezy ({money.reference})",
                    idempotency_key=external_refund_key(provider=LEMONSQUEEZY,
                                                        reference=f"payment-{payment.pk}-to-{target}"))
    refund.stamp(actor)
    refund.save()
    refund_counted(refund_id=refund.pk)
    payment_refund_apply(payment=payment, amount=refund.amount, actor=actor, reason=reason,
                         provider_data={"provider": LEMONSQUEEZY, "reference": money.reference})
    return True


def money_record(*, mirror: ProviderSubscription, money: LSMoney, actor: Actor, reason: str) -> MoneyResult:
    """Record one order or subscription invoice of a mirrored subscription (inside the event's transaction)."""
    if money.total <= 0:
        return MoneyResult(False, f"{money.reference} charged nothing")
    subscription = subscription_lock(subscription_id=mirror.subscription_id)
    invoice = _period_invoice(subscription=subscription, mirror=mirror, money=money, actor=actor)
    if not money.is_paid:
        return MoneyResult(False, f"{money.reference} is {money.status}: invoice {invoice.number} stays "
                                  f"{invoice.status} (Lemon Squeezy retries it; we never do)")
    payment, paid_now = _payment_record(invoice=invoice, money=money, actor=actor, reason=reason)
    credited = _credits_award(subscription=subscription, invoice=Invoice.objects.get(pk=invoice.pk),
                              payment=payment, actor=actor)
    refunded = _refunds_follow(payment=payment, money=money, actor=actor, reason=reason)
    applied = paid_now or credited or refunded
    return MoneyResult(applied, "" if applied else f"{money.reference} already recorded on payment #{payment.pk}")



def refund_settle(*, payment: Payment, refund: Refund, result: RefundResult, actor: Actor, reason: str,
                  now: datetime | None = None) -> bool:
    """Record Lemon Squeezy's answer to a refund we asked for, on it and its locked payment, once."""
    if refund.status == RefundStatus.SUCCEEDED:
        return False
    refund.provider_refund_id = refund.provider_refund_id or refund_reference(payment=payment)
    refund.save(update_fields=["provider_refund_id"])
    refund_transition(refund=refund, to_status=RefundStatus.SUCCEEDED, actor=actor, reason=reason,
                      provider_data={"provider": LEMONSQUEEZY, "reference": result.reference})
    payment_refund_apply(payment=payment, amount=refund.amount, actor=actor, reason=reason, now=now,
                         provider_data={"provider": LEMONSQUEEZY, "reference": result.reference})
    return True
