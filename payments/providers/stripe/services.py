"""Writes that involve Stripe customers and saved cards. Every Stripe call goes through the gateway;
without STRIPE_SECRET_KEY these raise PaymentProviderUnavailable before writing anything. Checkout and
SetupIntents are started through the provider contract (payments.checkout, StripeProvider). The ids are
kept in the customer's ProviderAccount for this rail (payments.services.provider_accounts)."""

from datetime import datetime

from core.audit import Actor
from core.exceptions import PaymentProviderUnavailable
from payments.models import ProviderAccount
from payments.providers.stripe import gateway
from payments.providers.stripe.models import STRIPE
from payments.services import provider_account_default_payment_method_set, provider_account_reference_set
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
    stored = (ProviderAccount.objects.filter(customer_id=customer.pk, provider=STRIPE)
              .values_list("provider_customer_id", flat=True).first())
    if stored:
        return stored
    current = Customer.objects.filter(pk=customer.pk).values("email", "name").get()
    created = gateway.customer_create(
        email=current["email"], name=current["name"], metadata={"customer_id": str(customer.pk)},
        idempotency_key=f"customer-{customer.pk}",
    )
    account = provider_account_reference_set(customer=customer, provider=STRIPE, provider_customer_id=created.id)
    return account.provider_customer_id


def customer_default_payment_method_set(*, customer: Customer, payment_method_id: str, observed_at: datetime,
                                        actor: Actor) -> bool:
    """Remember the card renewals are charged to, unless a newer message already set another one.
    Returns whether it changed."""
    return provider_account_default_payment_method_set(customer=customer, provider=STRIPE,
                                                       payment_method_id=payment_method_id,
                                                       observed_at=observed_at, actor=actor)
