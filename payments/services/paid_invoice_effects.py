"""What an invoice being paid causes in the apps below payments: the subscription it bills becomes active
(and gets its plan's credits), a credit pack grants its credits. Kept apart from the invoice services
so `invoice_settle` can call them without importing the subscription flows that issue invoices."""

from datetime import datetime

from django.db.models import Sum

from core.audit import Actor
from credits.models import CreditSource
from credits.services import credit_grant, credit_plan_refill
from payments.models import (
    PERIOD_BILLING_REASONS,
    CreditPackOrder,
    CreditPackOrderStatus,
    Invoice,
    InvoiceLineKind,
)
from payments.services.credit_pack_order_transitions import credit_pack_orders_transition_many
from subscriptions.models import SubscriptionStatus
from subscriptions.services import subscription_lock, subscription_transition


def subscription_activate_after_payment(*, subscription_id: int, actor: Actor, now: datetime | None = None) -> None:
    subscription = subscription_lock(subscription_id=subscription_id)
    if subscription.status in (SubscriptionStatus.INCOMPLETE, SubscriptionStatus.PAST_DUE):
        subscription_transition(subscription=subscription, to_status=SubscriptionStatus.ACTIVE, actor=actor,
                                reason="invoice paid", now=now)
        credit_plan_refill(subscription=subscription, actor=actor)


def credit_pack_fulfill(*, invoice: Invoice, actor: Actor) -> None:
    """Grant the credits a paid credit-pack invoice bought, as its lines' `credits` column says (never its
    metadata, a note staff may edit). Keyed by the invoice, so however the invoice came to be paid
    (Checkout, a webhook replay, staff) the credits are granted once."""
    credits = invoice.lines.filter(kind=InvoiceLineKind.CREDIT_PACK).aggregate(total=Sum("credits"))["total"] or 0
    if credits <= 0:
        return
    credit_grant(customer=invoice.customer, amount=credits, source=CreditSource.PURCHASE, actor=actor,
                 reason=f"credit pack {invoice.number}", idempotency_key=f"credit-pack-invoice-{invoice.pk}")


def credit_pack_order_grant_key(*, order_id: int) -> str:
    return f"credit-pack-order-{order_id}"


def credit_pack_orders_fulfill(*, invoice: Invoice, actor: Actor) -> int:
    """Grant the credits of the on-account orders a paid renewal invoice billed (each order's own `credits`
    column); returns how many orders were fulfilled now. Keyed per order (and the orders locked in
    primary-key order), so a replayed or concurrent settle grants each order once."""
    if invoice.billing_reason not in PERIOD_BILLING_REASONS:
        return 0  # only the run's period invoices bill orders
    orders = list(CreditPackOrder.objects.select_for_update().select_related("customer")
                  .filter(invoice=invoice, status=CreditPackOrderStatus.INVOICED).order_by("pk"))
    for order in orders:
        credit_grant(customer=order.customer, amount=order.credits, source=CreditSource.PURCHASE, actor=actor,
                     reason=f"credit pack {order.pack_code} on invoice {invoice.number}",
                     idempotency_key=credit_pack_order_grant_key(order_id=order.pk))
    if orders:
        credit_pack_orders_transition_many(orders=orders, to_status=CreditPackOrderStatus.FULFILLED, actor=actor,
                                           reason=f"invoice {invoice.number} paid")
    return len(orders)
