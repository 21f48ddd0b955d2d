"""The Lemon Squeezy rail as a module (docs/modules.md). Switched off, its webhook answers 404
`module_disabled`, its admin inbox is hidden and the registry stops using it (no checkout, no calls)."""

from payments.modules import rail_module

MODULES = [
    rail_module("lemonsqueezy", "Lemon Squeezy", admin_models=("payments_lemonsqueezy.lemonsqueezyevent",),
                api_prefixes=("/webhooks/lemonsqueezy/",)),
]
