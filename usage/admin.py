"""Back office for metering: meters and their per-plan prices are catalog (editable); usage events are
immutable once recorded, because invoices and credit debits were computed from them."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_tools import ReadOnlyAdminMixin, csv_export_action
from usage.models import Meter, MeterPrice, UsageAlert, UsageEvent, UsageThreshold
from usage.selectors import USAGE_EVENT_EXPORT


class MeterPriceInline(admin.TabularInline):
    model = MeterPrice
    extra = 0
    fields = ("plan", "unit_amount", "included_units")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan", "meter")


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "aggregation", "unique_property", "unit", "credits_per_unit", "is_active",
                    "created_at")
    list_filter = ("aggregation", "is_active")
    search_fields = ("code", "name")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at",)
    fieldsets = (
        (None, {"fields": ("code", "name", "unit", "is_active")}),
        (_("Aggregation"), {"fields": ("aggregation", "unique_property")}),
        (_("Credits"), {"fields": ("credits_per_unit",)}),
        (_("History"), {"fields": ("created_at",)}),
    )
    inlines = [MeterPriceInline]


@admin.register(MeterPrice)
class MeterPriceAdmin(admin.ModelAdmin):
    list_display = ("plan", "meter", "unit_amount", "included_units")
    list_filter = ("plan", "meter")
    search_fields = ("plan__code", "plan__name", "meter__code")
    list_select_related = ("plan", "meter")
    # No date_hierarchy: a price has no date of its own.

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan", "meter")


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("occurred_at", "customer", "meter", "quantity", "idempotency_key", "received_at")
    list_filter = ("meter",)
    search_fields = ("customer__name", "customer__name_ar",
                     "customer__email", "customer__external_id", "idempotency_key")
    date_hierarchy = "occurred_at"
    list_select_related = ("customer", "meter")
    # Usage tables grow fastest; counting every row on each page load is not worth its cost.
    show_full_result_count = False
    actions = [csv_export_action(USAGE_EVENT_EXPORT)]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer", "meter")


@admin.register(UsageThreshold)
class UsageThresholdAdmin(admin.ModelAdmin):
    """Alert levels and hard caps, per plan or per customer (docs/billing.md, "Usage alerts and spend caps")."""

    list_display = ("__str__", "plan", "customer", "meter", "kind", "value", "hard_cap", "created_at")
    list_filter = ("kind", "hard_cap", "meter")
    search_fields = ("name", "plan__code", "customer__name", "customer__name_ar", "customer__email")
    date_hierarchy = "created_at"
    raw_id_fields = ("customer",)
    readonly_fields = ("created_at",)


@admin.register(UsageAlert)
class UsageAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Thresholds customers crossed, once per period each: history, read-only."""

    list_display = ("created_at", "threshold", "customer", "period_start", "observed")
    list_filter = ("threshold__kind",)
    search_fields = ("customer__name", "customer__name_ar", "customer__email")
    date_hierarchy = "created_at"
    readonly_fields = ("threshold", "customer", "period_start", "observed", "created_at")
