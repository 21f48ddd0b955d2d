from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PayPalRailConfig(AppConfig):
    """The PayPal rail is a Django app of its own, like Stripe's, so that what only PayPal has lives in its
    package: the admin inbox (a proxy of the shared ProviderEvent, filtered to PayPal)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "payments.providers.paypal"
    label = "payments_paypal"
    verbose_name = _("PayPal")
