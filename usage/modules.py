"""The modules this app is made of (discovered by the `modules` app; docs/modules.md)."""

from django.utils.translation import gettext_lazy

from modules.definitions import ModuleDefinition
from usage.live import TOPICS as USAGE_TOPICS

MODULES = [
    ModuleDefinition(
        code="usage", name=gettext_lazy("Usage metering"), version="1.0.0", requires=("subscriptions",),
        description=gettext_lazy("Meters and their prices, exactly-once usage ingestion, entitlements and plan "
                                 "limits."),
        permissions=("usage.view_meter", "usage.view_usageevent", "usage.add_usageevent",
                     "usage.view_usagethreshold", "usage.add_usagethreshold", "usage.change_usagethreshold",
                     "usage.delete_usagethreshold", "usage.view_usagealert"),
        admin_models=("usage.meter", "usage.meterprice", "usage.usageevent", "usage.usagethreshold",
                      "usage.usagealert"),
        api_prefixes=("/api/v1/usage/", "/api/v1/meters/", "/api/v1/entitlements/"),
        live_topics=("usage",),
    ),
]

TOPICS = USAGE_TOPICS
