"""The modules this app is made of (discovered by the `modules` app; docs/modules.md)."""

from django.utils.translation import gettext_lazy

from modules.definitions import ModuleDefinition
from subscriptions.live import TOPICS as SUBSCRIPTION_TOPICS

MODULES = [
    ModuleDefinition(
        code="catalog", name=gettext_lazy("Plan catalog and customers"),
        version="1.0.0", is_core=True, requires=("platform",),
        description=gettext_lazy("Plans, customers and the API's door: who a caller is and what their plan allows."),
        # api_access: a customer's program may use the API's data endpoints (HasPlanFeature).
        features=("api_access",),
        permissions=("subscriptions.view_plan", "subscriptions.change_plan", "subscriptions.view_customer"),
        admin_models=("subscriptions.plan", "subscriptions.customer"),
        api_prefixes=("/api/v1/plans/", "/api/v1/customers/"),
    ),
    ModuleDefinition(
        code="subscriptions", name=gettext_lazy("Subscriptions"), version="1.0.0", is_core=True, requires=("catalog",),
        description=gettext_lazy("Subscriptions with trials, renewals, pauses and plan changes, and their audit "
                                 "trail."),
        permissions=("subscriptions.view_subscription", "subscriptions.change_subscription"),
        admin_models=("subscriptions.subscription", "subscriptions.subscriptionevent"),
        api_prefixes=("/api/v1/subscriptions/",),
        dashboard_panels=("mrr", "subscriptions"),
        live_topics=("subscriptions",),
    ),
]

TOPICS = SUBSCRIPTION_TOPICS
