from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StripeRailConfig(AppConfig):
    """The Stripe rail is a Django app of its own so that what only Stripe has lives in its package: the
    admin inbox (a proxy of the shared ProviderEvent, filtered to Stripe) and the `stripe_events` command,
    which Django finds only under an installed app."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "payments.providers.stripe"
    label = "payments_stripe"
    verbose_name = _("Stripe")
