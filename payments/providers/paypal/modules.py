"""The PayPal rail as a module (discovered by the `modules` app; docs/modules.md). Switched off, its
webhook answers 404 `module_disabled`, its admin inbox is hidden and the provider registry stops using it
(renewals, dunning, checkout and refunds find no PayPal rail)."""

from payments.modules import rail_module

MODULES = [
    rail_module("paypal", "PayPal", admin_models=("payments_paypal.paypalevent",), api_prefixes=("/webhooks/paypal/",)),
]
