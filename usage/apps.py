from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UsageConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "usage"
    verbose_name = _("Usage")

    def ready(self) -> None:
        # Credits sits below usage and cannot call it: every credit debit calls the watchers registered
        # here (credits/thresholds.py), which check usage's credit-balance thresholds.
        from credits.thresholds import credit_balance_watcher_register
        from usage.thresholds import credit_balance_levels_watched, credit_balance_thresholds_check

        credit_balance_watcher_register(credit_balance_thresholds_check, levels=credit_balance_levels_watched)
