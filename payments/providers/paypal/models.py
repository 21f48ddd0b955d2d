"""PayPal's view of the shared webhook inbox: the same table (payments.ProviderEvent), only PayPal's rows."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from payments.models import ProviderEvent

# The code of this rail in PAYMENT_PROVIDERS and in every `provider` column.
PAYPAL = "paypal"


class PayPalEventManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(provider=PAYPAL)


class PayPalEvent(ProviderEvent):
    """A ProviderEvent of this rail. Creating one through `PayPalEvent.objects` stores it as PayPal's."""

    objects = PayPalEventManager()

    class Meta:
        proxy = True
        verbose_name = _("PayPal event")
        verbose_name_plural = _("PayPal events")
        ordering = ["-received_at", "-id"]
        # Seeing and reprocessing events is the inbox's own permission (payments.*_providerevent), the same
        # for every rail; permissions of this proxy would only be granted by mistake.
        default_permissions = ()

    def save(self, *args, **kwargs):
        self.provider = PAYPAL
        super().save(*args, **kwargs)
