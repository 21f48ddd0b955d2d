"""The customer page as the back office shows it: the credits view of it (credits.admin) plus the
customer's most recent payments."""

from django.contrib import admin

from credits.admin import CreditsCustomerAdmin
from payments.admin.payments import RecentPaymentsInline
from subscriptions.models import Customer


class CustomerRecentPaymentInline(RecentPaymentsInline):
    recent_partition_by = "customer"
    recent_limit = 10
    fields = ("created_at", "invoice", "payment_amount", "method", "status_badge", "reference")
    readonly_fields = fields
    verbose_name_plural = "Payments (most recent)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")


class BackOfficeCustomerAdmin(CreditsCustomerAdmin):
    inlines = [*CreditsCustomerAdmin.inlines, CustomerRecentPaymentInline]


admin.site.unregister(Customer)
admin.site.register(Customer, BackOfficeCustomerAdmin)
