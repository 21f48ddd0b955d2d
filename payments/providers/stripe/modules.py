"""The Stripe rail as a module (discovered by the `modules` app; docs/modules.md). Switched off, its
webhook answers 404 `module_disabled`, its admin inbox is hidden and the provider registry stops using it
(renewals, dunning, checkout and refunds find no Stripe rail)."""

from payments.modules import rail_module

MODULES = [
    rail_module("stripe", "Stripe", admin_models=("payments_stripe.stripeevent",), api_prefixes=("/webhooks/stripe/",)),
]
