"""What an invoice being paid causes in the apps below payments: the subscription it bills becomes active
(and gets its plan's credits), a credit pack grants its credits. Kept apart from the invoice services
so `invoice_settle` can call them without importing the subscription flows that issue invoices."""

from datetime import datetime

from django.db.models import Sum

from core.audit import Actor
from credits.models import CreditSource
from credits.services import CreditWrite, credit_grant, credit_plan_refill
from payments.models import (
    PERIOD_BILLING_REASONS,
    CreditPackOrder,
    CreditPackOrderStatus,
    Invoice,
    InvoiceLineKind,
    PaymentCreditEntry,
)
from payments.services.credit_pack_order_transitions import credit_pack_orders_transition_many
from subscriptions.models import SubscriptionStatus
from subscriptions.services import subscription_lock, subscription_transition


def subscription_activate_after_payment(*, subscription_id: int, actor: Actor,
                                        now: datetime | None = None) -> CreditWrite | None:
    """Activate an incomplete or past-due subscription; returns the plan refill it granted, if any."""
    subscription = subscription_lock(subscription_id=subscription_id)
    # A mirrored subscription's status and credits follow its merchant of record's messages, not our
    # invoices: its rail records the period's credits itself.
    if subscription.is_mirrored or subscription.status not in (SubscriptionStatus.INCOMPLETE,
                                                               SubscriptionStatus.PAST_DUE):
        return None
    subscription_transition(subscription=subscription, to_status=SubscriptionStatus.ACTIVE, actor=actor,
                            reason="invoice paid", now=now)
    return credit_plan_refill(subscription=subscription, actor=actor)


def credit_pack_fulfill(*, invoice: Invoice, actor: Actor) -> CreditWrite | None:
    """Grant the credits a paid credit-pack invoice bought, as its lines' `credits` column says (never its
    metadata, a note staff may edit). Keyed by the invoice, so however the invoice came to be paid
    (Checkout, a webhook replay, staff) the credits are granted once."""
    credits = invoice.lines.filter(kind=InvoiceLineKind.CREDIT_PACK).aggregate(total=Sum("credits"))["total"] or 0
    if credits <= 0:
        return None
    return credit_grant(customer=invoice.customer, amount=credits, source=CreditSource.PURCHASE, actor=actor,
                        reason=f"credit pack {invoice.number}", idempotency_key=f"credit-pack-invoice-{invoice.pk}")


def credit_pack_order_grant_key(*, order_id: int) -> str:
    return f"credit-pack-order-{order_id}"


def credit_pack_orders_fulfill(*, invoice: Invoice, actor: Actor) -> list[CreditWrite]:
    """Grant the credits of the on-account orders a paid renewal invoice billed (each order's own `credits`
    column); returns the grants of the orders fulfilled now. Keyed per order (and the orders locked in
    primary-key order), so a replayed or concurrent settle grants each order once."""
    if invoice.billing_reason not in PERIOD_BILLING_REASONS:
        return []  # only the run's period invoices bill orders
    orders = list(CreditPackOrder.objects.select_for_update().select_related("customer")
                  .filter(invoice=invoice, status=CreditPackOrderStatus.INVOICED).order_by("pk"))
    grants = [credit_grant(customer=order.customer, amount=order.credits, source=CreditSource.PURCHASE, actor=actor,
                           reason=f"credit pack {order.pack_code} on invoice {invoice.number}",
                           idempotency_key=credit_pack_order_grant_key(order_id=order.pk))
              for order in orders]
    if orders:
        credit_pack_orders_transition_many(orders=orders, to_status=CreditPackOrderStatus.FULFILLED, actor=actor,
                                           reason=f"invoice {invoice.number} paid")
    return grants


def payment_credit_entries_record(*, payment_id: int, writes: list[CreditWrite | None]) -> None:
    """Remember which ledger entries `payment` caused (a replayed grant was caused earlier, by something else)."""
    PaymentCreditEntry.objects.bulk_create(
        [PaymentCreditEntry(payment_id=payment_id, entry=write.entry)
         for write in writes if write is not None and not write.replayed])
