"""The modules this app is made of (discovered by the `modules` app; docs/modules.md)."""

from django.utils.translation import gettext_lazy

from credits.live import TOPICS as CREDIT_TOPICS
from modules.definitions import ModuleDefinition

MODULES = [
    ModuleDefinition(
        code="credits", name=gettext_lazy("Prepaid credits"), version="1.0.0", requires=("subscriptions",),
        description=gettext_lazy("Credit grants, the append-only ledger, balances, plan refills, expiry and credit "
                                 "packs."),
        permissions=("credits.view_creditbalance", "credits.add_creditgrant", "credits.view_creditledgerentry"),
        admin_models=("credits.creditbalance", "credits.creditgrant", "credits.creditledgerentry",
                      "credits.creditallocation", "payments.creditpackorder", "payments.creditpackorderstatuschange"),
        api_prefixes=("/api/v1/credits/", "/api/v1/checkout/credit-pack"),
        dashboard_panels=("credits",),
        billing_steps=("expiry",),
        live_topics=("credits",),
    ),
]

TOPICS = CREDIT_TOPICS
