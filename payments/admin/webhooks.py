"""The Stripe webhook inbox, read-only: it is the record of what Stripe said and when."""

from django.contrib import admin

from billing_project.admin_tools import ReadOnlyAdminMixin
from payments.models import StripeEvent


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("event_id", "type", "status", "livemode", "attempts", "stripe_created_at", "received_at",
                    "processed_at")
    list_filter = ("status", "livemode", "type")
    search_fields = ("event_id", "type", "error")
    date_hierarchy = "received_at"
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("event_id", "type", "api_version", "livemode")}),
        ("Processing", {"fields": ("status", "attempts", "processed_at", "error")}),
        ("Times", {"fields": ("stripe_created_at", "received_at")}),
        ("Payload", {"fields": ("payload",)}),
    )
