from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        # Registers the PAYMENT_PROVIDERS system check.
        from payments.providers import checks  # noqa: F401
