"""Writes that involve Stripe customers and saved cards. Every Stripe call goes through the gateway;
without STRIPE_SECRET_KEY these raise PaymentProviderUnavailable before writing anything. Checkout and
SetupIntents are started through the provider contract (payments.checkout, StripeProvider)."""

from datetime import datetime

from django.db import transaction

from core.audit import Actor
from core.exceptions import PaymentProviderUnavailable
from payments.providers.stripe import gateway
from subscriptions.models import Customer


def _require_stripe() -> None:
    if not gateway.is_configured():
        raise PaymentProviderUnavailable(gateway.NOT_CONFIGURED)


def customer_stripe_ensure(*, customer: Customer) -> str:
    """The customer's Stripe id, creating the Stripe customer the first time.

    Stripe is called with no transaction open and no row locked; the id is then stored in a short
    transaction. The idempotency key is the customer's own id, so two concurrent first calls (or a retry
    after a crash between Stripe's answer and our commit) get the same Stripe customer back, not two.
    """
    _require_stripe()
    if customer.stripe_customer_id:
        return customer.stripe_customer_id
    current = Customer.objects.filter(pk=customer.pk).values("stripe_customer_id", "email", "name").get()
    if not current["stripe_customer_id"]:
        created = gateway.customer_create(
            email=current["email"], name=current["name"], metadata={"customer_id": str(customer.pk)},
            idempotency_key=f"customer-{customer.pk}",
        )
        with transaction.atomic():
            locked = Customer.objects.select_for_update().get(pk=customer.pk)
            if not locked.stripe_customer_id:
                locked.stripe_customer_id = created.id
                locked.save(update_fields=["stripe_customer_id", "updated_at"])
        current["stripe_customer_id"] = locked.stripe_customer_id
    customer.stripe_customer_id = current["stripe_customer_id"]
    return customer.stripe_customer_id


@transaction.atomic
def customer_default_payment_method_set(*, customer: Customer, payment_method_id: str, observed_at: datetime,
                                        actor: Actor) -> bool:
    """Remember the card renewals are charged to, unless a newer message already set another one.
    Returns whether it changed."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    set_at = customer.stripe_default_payment_method_set_at
    if set_at is not None and observed_at < set_at:
        return False
    changed = customer.stripe_default_payment_method_id != payment_method_id
    customer.stripe_default_payment_method_id = payment_method_id
    customer.stripe_default_payment_method_set_at = observed_at
    customer.save(update_fields=["stripe_default_payment_method_id", "stripe_default_payment_method_set_at",
                                 "updated_at"])
    return changed
