"""The customer page as the back office shows it: the credits view of it (credits.admin) plus the
customer's most recent payments."""

from django.contrib import admin

from billing_project.admin_tools import RecentRowsInline, money
from credits.admin import CreditsCustomerAdmin
from payments.admin.payments import payment_status_badge
from payments.models import Payment
from subscriptions.models import Customer


class CustomerRecentPaymentInline(RecentRowsInline):
    model = Payment
    recent_partition_by = "customer"
    recent_limit = 10
    fields = ("created_at", "invoice", "payment_amount", "method", "status_badge", "reference")
    readonly_fields = fields
    verbose_name_plural = "Payments (most recent)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description="Amount")
    def payment_amount(self, obj: Payment) -> str:
        return money(obj.amount, obj.currency)

    @admin.display(description="Status")
    def status_badge(self, obj: Payment) -> str:
        return payment_status_badge(obj)


class BackOfficeCustomerAdmin(CreditsCustomerAdmin):
    inlines = [*CreditsCustomerAdmin.inlines, CustomerRecentPaymentInline]


admin.site.unregister(Customer)
admin.site.register(Customer, BackOfficeCustomerAdmin)
