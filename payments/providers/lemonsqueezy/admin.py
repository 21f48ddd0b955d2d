"""The Lemon Squeezy webhook inbox in the admin: the shared inbox admin (read-only, reprocess action)."""

from django.contrib import admin

from payments.providers.inbox_admin import ProviderEventAdmin
from payments.providers.lemonsqueezy.models import LemonSqueezyEvent
from payments.providers.lemonsqueezy.webhooks.services import lemonsqueezy_event_reprocess


@admin.register(LemonSqueezyEvent)
class LemonSqueezyEventAdmin(ProviderEventAdmin):
    event_reprocess = staticmethod(lemonsqueezy_event_reprocess)
