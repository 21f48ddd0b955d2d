"""Stripe's view of the shared webhook inbox: the same table, only Stripe's rows."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from payments.models import ProviderEvent

# The code of this rail in PAYMENT_PROVIDERS and in every `provider` column.
STRIPE = "stripe"


class StripeEventManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(provider=STRIPE)


class StripeEvent(ProviderEvent):
    """A ProviderEvent of this rail. Creating one through `StripeEvent.objects` stores it as Stripe's."""

    objects = StripeEventManager()

    class Meta:
        proxy = True
        verbose_name = _("Stripe event")
        verbose_name_plural = _("Stripe events")
        ordering = ["-received_at", "-id"]
        # Seeing and reprocessing events is the inbox's own permission (payments.*_providerevent), the same
        # for every rail; permissions of this proxy would only be granted by mistake.
        default_permissions = ()

    def save(self, *args, **kwargs):
        self.provider = STRIPE
        super().save(*args, **kwargs)
