from django.apps import AppConfig


class PayPalRailConfig(AppConfig):
    """The PayPal rail is a Django app of its own, so that what only PayPal keeps lives in its package: its
    webhook inbox and customer accounts (models.py, their admin) and the `paypal_events` command."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "payments.providers.paypal"
    label = "payments_paypal"
    verbose_name = "PayPal"
