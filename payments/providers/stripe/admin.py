"""The Stripe webhook inbox in the admin: the shared inbox admin on the StripeEvent proxy, plus Stripe's
livemode flag."""

from django.contrib import admin

from payments.providers.inbox_admin import ProviderEventAdmin
from payments.providers.stripe.models import StripeEvent
from payments.providers.stripe.webhooks.services import stripe_event_reprocess


@admin.register(StripeEvent)
class StripeEventAdmin(ProviderEventAdmin):
    event_reprocess = staticmethod(stripe_event_reprocess)
    list_display = ("event_id", "type", "status", "livemode", "attempts", "provider_created_at", "received_at",
                    "processed_at")
    list_filter = ("status", "livemode", "type")
    fieldsets = (
        (None, {"fields": ("event_id", "type", "api_version", "livemode")}),
        *ProviderEventAdmin.fieldsets[1:],
    )
