"""Who a customer is at each payment rail (payments.ProviderAccount), read for the billing run,
collection and the contract's `customer_account`.

Reads go through `customer.provider_accounts.all()`, so a list that prefetched them
(`prefetch_related(PROVIDER_ACCOUNTS)`: the API's customer pages) answers from memory and one customer
costs one small query. The billing run instead annotates its batches with `HAS_SAVED_METHOD` (one EXISTS
per row of the claiming query): most customers it handles have nothing to charge, and Django's prefetch
bookkeeping per customer cost more than the renewal itself (bench/billing_run.py).
"""

from collections.abc import Collection
from datetime import UTC, datetime

from django.db.models import Exists, Model, OuterRef

from payments.models import ProviderAccount
from subscriptions.models import Customer

# The relation to prefetch from a customer.
PROVIDER_ACCOUNTS = "provider_accounts"
# The annotation the billing run adds to the invoices and subscriptions it claims.
HAS_SAVED_METHOD = "customer_has_saved_payment_method"

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


def saved_payment_method_exists() -> Exists:
    """`.annotate(**{HAS_SAVED_METHOD: saved_payment_method_exists()})` on a query of rows with a
    `customer_id` (invoices, subscriptions)."""
    return Exists(ProviderAccount.objects.filter(customer_id=OuterRef("customer_id"))
                  .exclude(default_payment_method_id=""))


def row_has_saved_payment_method(*, row: Model, customer: Customer) -> bool:
    """From the row's HAS_SAVED_METHOD annotation when its query added one, else one query."""
    annotated = getattr(row, HAS_SAVED_METHOD, None)
    return customer_has_payment_method(customer=customer) if annotated is None else annotated


def provider_account_by_reference(*, provider: str, provider_customer_id: str) -> ProviderAccount | None:
    """The account a provider's message names by its own customer id (with its customer)."""
    if not provider_customer_id:
        return None
    return (ProviderAccount.objects.select_related("customer")
            .filter(provider=provider, provider_customer_id=provider_customer_id).first())
