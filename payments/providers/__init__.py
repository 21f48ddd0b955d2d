"""Payment rails behind one contract (base.py), chosen through the registry (registry.py); one package
per rail: stripe/ and manual/. docs/providers.md describes the layout and how to add a rail."""

from payments.providers.base import (
    TRANSACTION_PAYMENT,
    TRANSACTION_REFUND,
    Capability,
    ChargeRequest,
    ChargeResult,
    CheckoutLine,
    CheckoutRequest,
    CheckoutSession,
    CustomerAccount,
    PaymentProvider,
    ProviderBase,
    ProviderHealth,
    ProviderTransaction,
    RefundRequest,
    RefundResult,
    SetupRequest,
    SetupSession,
)
from payments.providers.registry import (
    provider_for,
    provider_installed_for,
    provider_with,
    providers_installed,
    providers_with,
)

__all__ = [
    "TRANSACTION_PAYMENT",
    "TRANSACTION_REFUND",
    "Capability",
    "ChargeRequest",
    "ChargeResult",
    "CheckoutLine",
    "CheckoutRequest",
    "CheckoutSession",
    "CustomerAccount",
    "PaymentProvider",
    "ProviderBase",
    "ProviderHealth",
    "ProviderTransaction",
    "RefundRequest",
    "RefundResult",
    "SetupRequest",
    "SetupSession",
    "provider_for",
    "provider_installed_for",
    "provider_with",
    "providers_installed",
    "providers_with",
]
