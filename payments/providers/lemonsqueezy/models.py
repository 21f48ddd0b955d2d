"""Lemon Squeezy's view of the shared webhook inbox: the same table (payments.ProviderEvent), only its rows."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from payments.models import ProviderEvent

# The code of this rail in PAYMENT_PROVIDERS, in every `provider` column and in Subscription.billed_by.
LEMONSQUEEZY = "lemonsqueezy"


class LemonSqueezyEventManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(provider=LEMONSQUEEZY)


class LemonSqueezyEvent(ProviderEvent):
    """A ProviderEvent of this rail. Creating one through `LemonSqueezyEvent.objects` stores it as its own."""

    objects = LemonSqueezyEventManager()

    class Meta:
        proxy = True
        verbose_name = _("Lemon Squeezy event")
        verbose_name_plural = _("Lemon Squeezy events")
        ordering = ["-received_at", "-id"]
        # Seeing and reprocessing events is the inbox's own permission (payments.*_providerevent).
        default_permissions = ()

    def save(self, *args, **kwargs):
        self.provider = LEMONSQUEEZY
        super().save(*args, **kwargs)
