from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SubscriptionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "subscriptions"
    verbose_name = _("Subscriptions")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save, pre_delete
        from rest_framework.authtoken.models import Token

        from subscriptions.api.tokens import token_changed, token_user_changed

        # Cached API token holders are forgotten when the token or its user changes (subscriptions/api/tokens.py).
        post_save.connect(token_changed, sender=Token, dispatch_uid="api-token-saved")
        post_delete.connect(token_changed, sender=Token, dispatch_uid="api-token-deleted")
        post_save.connect(token_user_changed, sender=get_user_model(), dispatch_uid="api-token-user-saved")
        # Before the delete: afterwards the user's token row is gone with it (its own post_delete forgets it too).
        pre_delete.connect(token_user_changed, sender=get_user_model(), dispatch_uid="api-token-user-deleted")
