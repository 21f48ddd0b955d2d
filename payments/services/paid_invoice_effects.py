"""What an invoice being paid causes in the apps below payments: the subscription it bills becomes active
(and gets its plan's credits), a credit pack grants its credits. Kept apart from the invoice services
so `invoice_settle` can call them without importing the subscription flows that issue invoices."""

from datetime import datetime

from billing_project.audit import Actor
from credits.models import CreditSource
from credits.services import credit_grant, credit_plan_refill
from payments.models import CreditPackOrder, CreditPackOrderStatus, Invoice
from subscriptions.models import SubscriptionStatus
from subscriptions.services import subscription_lock, subscription_transition


def subscription_activate_after_payment(*, subscription_id: int, actor: Actor, now: datetime | None = None) -> None:
    subscription = subscription_lock(subscription_id=subscription_id)
    if subscription.status in (SubscriptionStatus.INCOMPLETE, SubscriptionStatus.PAST_DUE):
        subscription_transition(subscription=subscription, to_status=SubscriptionStatus.ACTIVE, actor=actor,
                                reason="invoice paid", now=now)
        credit_plan_refill(subscription=subscription, actor=actor)


def credit_pack_fulfill(*, invoice: Invoice, actor: Actor) -> None:
    """Grant the credits a paid credit-pack invoice bought. Keyed by the invoice, so however the invoice
    came to be paid (Checkout, a webhook replay, staff) the credits are granted once."""
    credits = int(invoice.metadata.get("credits") or 0)
    if credits <= 0:
        return
    credit_grant(customer=invoice.customer, amount=credits, source=CreditSource.PURCHASE, actor=actor,
                 reason=f"credit pack {invoice.number}", idempotency_key=f"credit-pack-invoice-{invoice.pk}")


# The invoice metadata key listing the credit pack orders a renewal invoice bills; settling an invoice
# without it costs no query for orders.
CREDIT_PACK_ORDERS_KEY = "credit_pack_orders"


def credit_pack_order_grant_key(*, order_id: int) -> str:
    return f"credit-pack-order-{order_id}"


def credit_pack_orders_fulfill(*, invoice: Invoice, actor: Actor) -> int:
    """Grant the credits of the on-account orders a paid renewal invoice billed; returns how many orders
    were fulfilled now. Keyed per order (and the orders locked in primary-key order), so a replayed or
    concurrent settle grants each order once."""
    if not invoice.metadata.get(CREDIT_PACK_ORDERS_KEY):
        return 0
    orders = list(CreditPackOrder.objects.select_for_update().select_related("customer")
                  .filter(invoice=invoice, status=CreditPackOrderStatus.INVOICED).order_by("pk"))
    for order in orders:
        credit_grant(customer=order.customer, amount=order.credits, source=CreditSource.PURCHASE, actor=actor,
                     reason=f"credit pack {order.pack_code} on invoice {invoice.number}",
                     idempotency_key=credit_pack_order_grant_key(order_id=order.pk))
    CreditPackOrder.objects.filter(pk__in=[o.pk for o in orders]).update(status=CreditPackOrderStatus.FULFILLED)
    return len(orders)
