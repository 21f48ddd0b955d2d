"""Credit packs bought on account: an order waits (pending) for the subscription's next renewal, which
bills it as a line of the period invoice (payments.billing.renewals); paying that invoice grants the
credits (payments.services.paid_invoice_effects.credit_pack_orders_fulfill).

Not re-exported from `payments.services`: the catalog lives in payments.checkout, which imports the
Stripe services, which import `payments.services`."""

from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import IllegalTransition, InvalidOperation
from payments.checkout import credit_pack_get
from payments.models import CreditPackOrder, CreditPackOrderStatus
from payments.services.credit_pack_order_transitions import credit_pack_order_transition
from subscriptions.models import Customer, SubscriptionStatus
from subscriptions.selectors import subscription_live_for_customer

# A paused subscription renews nothing and an incomplete one may never start: neither has a renewal
# coming that would bill the order.
_BILLABLE_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


def credit_pack_order_place(*, customer: Customer, pack: str, actor: Actor) -> CreditPackOrder:
    """Order the catalog pack `pack` at its price in the customer's currency, billed on the next renewal."""
    sold = credit_pack_get(code=pack, currency=customer.currency)
    subscription = subscription_live_for_customer(customer=customer)
    if subscription is None or subscription.status not in _BILLABLE_STATUSES:
        message = (_("A credit pack on account is billed on the next renewal, and this customer has no live "
                     "subscription; buy it through Checkout instead.") if subscription is None else
                   _("A credit pack on account is billed on the next renewal, and this customer has a %(status)s "
                     "subscription; buy it through Checkout instead.") % {"status": subscription.status})
        raise InvalidOperation(message, code="no_renewal_to_bill")
    return CreditPackOrder.objects.create(
        customer=customer, pack_code=sold.code, credits=sold.credits, amount=sold.amount, currency=sold.currency,
        actor=actor.user, actor_label=actor.label)


@transaction.atomic
def credit_pack_order_cancel(*, order: CreditPackOrder, actor: Actor) -> CreditPackOrder:
    """Cancel an order not yet billed. The row lock makes a cancel and a renewal billing it take turns."""
    order = CreditPackOrder.objects.select_for_update().get(pk=order.pk)
    if order.status != CreditPackOrderStatus.PENDING:
        raise IllegalTransition(_("Only a pending order can be canceled; this one is %(status)s.")
                                % {"status": order.status})
    return credit_pack_order_transition(order=order, to_status=CreditPackOrderStatus.CANCELED, actor=actor,
                                        reason="canceled before it was billed")
