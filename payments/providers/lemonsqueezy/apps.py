from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LemonSqueezyRailConfig(AppConfig):
    """The Lemon Squeezy rail is a Django app of its own, like Stripe's and PayPal's, so that what only it
    has lives in its package: the admin inbox (a proxy of the shared ProviderEvent) and its command."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "payments.providers.lemonsqueezy"
    label = "payments_lemonsqueezy"
    verbose_name = _("Lemon Squeezy")
