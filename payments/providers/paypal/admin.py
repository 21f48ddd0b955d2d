"""The PayPal webhook inbox in the admin: the shared inbox admin on the PayPalEvent proxy."""

from django.contrib import admin

from payments.providers.inbox_admin import ProviderEventAdmin
from payments.providers.paypal.models import PayPalEvent
from payments.providers.paypal.webhooks.services import paypal_event_reprocess


@admin.register(PayPalEvent)
class PayPalEventAdmin(ProviderEventAdmin):
    event_reprocess = staticmethod(paypal_event_reprocess)
