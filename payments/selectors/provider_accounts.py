"""Who a customer is at each payment rail (payments.ProviderAccount), read for the billing run,
collection and the contract's `customer_account`.

Each read goes through `customer.provider_accounts.all()`, so a batch that prefetched them
(`prefetch_related(PROVIDER_ACCOUNTS)`) answers from memory and a single customer costs one small query.
"""

from collections.abc import Collection
from datetime import UTC, datetime

from payments.models import ProviderAccount
from subscriptions.models import Customer

# The relation to prefetch from a customer (or "customer__" + it from an invoice or a subscription).
PROVIDER_ACCOUNTS = "provider_accounts"

_NEVER = datetime.min.replace(tzinfo=UTC)


def provider_account_get(*, customer: Customer, provider: str) -> ProviderAccount | None:
    """The customer's account at `provider`, or None."""
    return next((account for account in customer.provider_accounts.all() if account.provider == provider), None)


def provider_account_for_charge(*, customer: Customer, providers: Collection[str]) -> ProviderAccount | None:
    """The account an off-session charge uses among `providers`: of those holding a saved payment method,
    the one whose method was saved last (docs/providers.md); None when no account holds one."""
    saved = [account for account in customer.provider_accounts.all()
             if account.provider in providers and account.default_payment_method_id]
    return max(saved, key=lambda a: (a.default_payment_method_set_at or _NEVER, a.pk), default=None)


def customer_has_payment_method(*, customer: Customer) -> bool:
    """Whether any rail holds a saved payment method for the customer (a trial may convert)."""
    return any(account.default_payment_method_id for account in customer.provider_accounts.all())


def provider_account_by_reference(*, provider: str, provider_customer_id: str) -> ProviderAccount | None:
    """The account a provider's message names by its own customer id (with its customer)."""
    if not provider_customer_id:
        return None
    return (ProviderAccount.objects.select_related("customer")
            .filter(provider=provider, provider_customer_id=provider_customer_id).first())
