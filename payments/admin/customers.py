"""The customer page as the back office shows it: the credits view of it (credits.admin) plus the
customer's provider accounts and most recent payments; the plan page with its provider prices."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_tools import ReadOnlyTabularInline
from credits.admin import CreditsCustomerAdmin
from payments.admin.payments import RecentPaymentsInline
from payments.models import ProviderAccount, ProviderPlanPrice
from subscriptions.admin import PlanAdmin
from subscriptions.models import Customer, Plan


class CustomerRecentPaymentInline(RecentPaymentsInline):
    recent_partition_by = "customer"
    recent_limit = 10
    fields = ("created_at", "invoice", "payment_amount", "method", "status_badge", "reference")
    readonly_fields = fields
    verbose_name_plural = _("Payments (most recent)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")


class ProviderAccountInline(ReadOnlyTabularInline):
    """Read-only: the rails write these ids; a hand-edited one would route webhooks to the wrong customer."""

    model = ProviderAccount
    fields = ("provider", "provider_customer_id", "default_payment_method_id", "default_payment_method_set_at",
              "created_at")
    readonly_fields = fields
    verbose_name_plural = _("Provider accounts")


class BackOfficeCustomerAdmin(CreditsCustomerAdmin):
    inlines = [*CreditsCustomerAdmin.inlines, ProviderAccountInline, CustomerRecentPaymentInline]
    search_fields = (*CreditsCustomerAdmin.search_fields, "provider_accounts__provider_customer_id")


class ProviderPlanPriceInline(admin.TabularInline):
    """Staff map a plan to each rail's price (the ids come from the rail's dashboard)."""

    model = ProviderPlanPrice
    fields = ("provider", "provider_price_id", "provider_product_id")
    extra = 0
    verbose_name_plural = _("Provider prices")


class BackOfficePlanAdmin(PlanAdmin):
    inlines = [*PlanAdmin.inlines, ProviderPlanPriceInline]
    search_fields = (*PlanAdmin.search_fields, "provider_prices__provider_price_id")


admin.site.unregister(Customer)
admin.site.register(Customer, BackOfficeCustomerAdmin)
admin.site.unregister(Plan)
admin.site.register(Plan, BackOfficePlanAdmin)
