"""Writes of payments.ProviderAccount, for every rail: remembering the provider's customer id and the
payment method renewals are charged to. A rail's services call these after the provider answered; no
provider is called here and each write is one short transaction."""

from datetime import datetime

from django.db import transaction

from core.audit import Actor
from payments.models import ProviderAccount
from subscriptions.models import Customer


def _account_lock(*, customer: Customer, provider: str) -> ProviderAccount:
    """The customer's account at `provider`, locked, created empty the first time (two first writers
    insert one row: get_or_create reads the winner's when the unique constraint refuses the loser's)."""
    ProviderAccount.objects.get_or_create(customer_id=customer.pk, provider=provider)
    return ProviderAccount.objects.select_for_update().get(customer_id=customer.pk, provider=provider)


@transaction.atomic
def provider_account_reference_set(*, customer: Customer, provider: str, provider_customer_id: str) -> ProviderAccount:
    """Remember the provider's id for the customer, unless one is already stored (the first one wins: the
    provider's idempotency key makes a concurrent first call answer the same id anyway)."""
    account = _account_lock(customer=customer, provider=provider)
    if not account.provider_customer_id:
        account.provider_customer_id = provider_customer_id
        account.save(update_fields=["provider_customer_id", "updated_at"])
    return account


@transaction.atomic
def provider_account_default_payment_method_set(*, customer: Customer, provider: str, payment_method_id: str,
                                                observed_at: datetime, actor: Actor) -> bool:
    """Remember the payment method renewals are charged to, unless a newer message already set another
    one (`default_payment_method_set_at`). Returns whether it changed."""
    account = _account_lock(customer=customer, provider=provider)
    set_at = account.default_payment_method_set_at
    if set_at is not None and observed_at < set_at:
        return False
    changed = account.default_payment_method_id != payment_method_id
    account.default_payment_method_id = payment_method_id
    account.default_payment_method_set_at = observed_at
    account.save(update_fields=["default_payment_method_id", "default_payment_method_set_at", "updated_at"])
    return changed
