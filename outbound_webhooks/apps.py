from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OutboundWebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "outbound_webhooks"
    verbose_name = _("Outbound webhooks")
