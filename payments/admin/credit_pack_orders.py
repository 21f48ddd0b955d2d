"""Credit packs bought on account. Read-only: an order is placed and canceled through the services
(API), invoiced by the renewal and fulfilled when its invoice is paid; editing it here would let the
order disagree with the invoice line that bills it."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_tools import ReadOnlyAdminMixin, RecentRowsInline, money_column
from payments.models import CreditPackOrder, CreditPackOrderStatusChange


class CreditPackOrderStatusChangeInline(RecentRowsInline):
    model = CreditPackOrderStatusChange
    recent_partition_by = "order"
    recent_limit = 25
    fields = ("created_at", "from_status", "to_status", "actor_label", "reason")
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = _("Status changes (most recent)")


@admin.register(CreditPackOrder)
class CreditPackOrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "customer", "pack_code", "credits", "order_amount", "status", "invoice", "created_at",
                    "actor_label")
    list_filter = ("status", "currency", "pack_code")
    search_fields = ("customer__name", "customer__name_ar",
                     "customer__email", "customer__external_id", "invoice__number", "pack_code")
    date_hierarchy = "created_at"
    list_select_related = ("customer", "invoice")
    fieldsets = (
        (None, {"fields": ("customer", "pack_code", "credits", "order_amount", "status")}),
        (_("Billing"), {"fields": ("invoice",)}),
        (_("History"), {"fields": ("created_at", "updated_at", "actor_label")}),
    )
    readonly_fields = ("customer", "pack_code", "credits", "order_amount", "status", "invoice", "created_at",
                       "updated_at", "actor_label")
    inlines = [CreditPackOrderStatusChangeInline]

    order_amount = money_column("amount", description=_("Price"), ordering="amount")


@admin.register(CreditPackOrderStatusChange)
class CreditPackOrderStatusChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "order", "from_status", "to_status", "actor_label", "reason")
    list_filter = ("to_status", "from_status")
    search_fields = ("order__customer__email", "order__pack_code", "reason", "actor_label")
    date_hierarchy = "created_at"
    list_select_related = ("order__customer",)
    show_full_result_count = False
