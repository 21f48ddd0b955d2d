"""Back office for customers, plans and subscriptions.

Subscriptions change status only through the services (cancel actions below); their history is the
read-only SubscriptionEvent trail. Higher apps extend CustomerAdmin (credits, payments) rather than
this module importing them, to keep the layering.
"""

from django.contrib import admin
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from core.admin_tools import ReadOnlyAdminMixin, RecentRowsInline, live_status_badge, money_column, run_for_each
from core.audit import Actor
from subscriptions.models import (
    LIVE_SUBSCRIPTION_STATUSES,
    Customer,
    Plan,
    Subscription,
    SubscriptionEvent,
)
from subscriptions.services import subscription_cancel


class CustomerSubscriptionInline(RecentRowsInline):
    model = Subscription
    recent_partition_by = "customer"
    recent_order_by = ("-created_at", "-id")
    fields = ("plan", "status", "current_period_start", "current_period_end", "cancel_at_period_end", "created_at")
    readonly_fields = fields
    verbose_name_plural = _("Subscriptions (most recent)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer", "plan")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "name_ar", "email", "currency", "preferred_language", "external_id", "created_at")
    list_filter = ("currency", "preferred_language", "created_at")
    # Provider ids are searched from payments' customer admin, which knows the provider accounts.
    search_fields = ("name", "name_ar", "email", "external_id")
    date_hierarchy = "created_at"
    raw_id_fields = ("user",)
    fieldsets = (
        (None, {"fields": ("name", "name_ar", "email", "currency", "preferred_language", "user", "external_id")}),
        (_("Metadata"), {"fields": ("metadata",), "classes": ("collapse",)}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )
    inlines = [CustomerSubscriptionInline]

    def get_readonly_fields(self, request, obj=None):
        # The currency is fixed once the account exists: its invoices and payments are all in it.
        fields = ["created_at", "updated_at"]
        return fields + ["currency"] if obj is not None else fields


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "name_ar", "price", "billing_interval", "trial_days", "credits_per_period",
                    "rate_limit_per_minute", "rate_limit_per_hour", "api_calls_per_day", "live_subscriptions",
                    "is_active", "sort_order")
    list_filter = ("is_active", "interval", "currency", "credits_rollover")
    search_fields = ("code", "name", "name_ar")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at",)
    fieldsets = (
        (None, {"fields": ("code", "name", "name_ar", "description", "is_active", "sort_order")}),
        (_("Price"), {"fields": ("amount", "currency", "interval", "interval_count", "trial_days")}),
        (_("Credits"), {"fields": ("credits_per_period", "credits_rollover")}),
        (_("Limits and features"), {"fields": ("rate_limit_per_minute", "rate_limit_per_hour", "api_calls_per_day",
                                            "features")}),
        (_("History"), {"fields": ("created_at",)}),
    )

    def get_queryset(self, request):
        # One aggregate in the changelist query instead of a count per row.
        return super().get_queryset(request).annotate(
            live_count=Count("subscriptions", filter=Q(subscriptions__status__in=LIVE_SUBSCRIPTION_STATUSES)),
        )

    price = money_column("amount", description=_("Price"), ordering="amount")

    @admin.display(description=_("Billed every"))
    def billing_interval(self, obj: Plan) -> str:
        if obj.interval_count == 1:
            return obj.get_interval_display().lower()
        return f"{obj.interval_count} {obj.interval}s"

    @admin.display(description=_("Live subscriptions"), ordering="live_count")
    def live_subscriptions(self, obj: Plan) -> int:
        return obj.live_count


class SubscriptionEventInline(RecentRowsInline):
    model = SubscriptionEvent
    recent_partition_by = "subscription"
    recent_limit = 25
    fields = ("created_at", "kind", "from_status", "to_status", "from_plan", "to_plan", "actor_label", "reason")
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = _("Events (most recent)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("from_plan", "to_plan")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "plan", "status_badge", "current_period_start", "current_period_end",
                    "cancel_at_period_end", "created_at")
    list_filter = ("status", "cancel_at_period_end", "plan")
    search_fields = ("customer__name", "customer__name_ar", "customer__email", "customer__external_id", "plan__code")
    date_hierarchy = "created_at"
    list_select_related = ("customer", "plan")
    fieldsets = (
        (None, {"fields": ("customer", "plan", "status_badge", "scheduled_plan", "billed_by")}),
        (_("Period"), {"fields": ("billing_cycle_anchor", "current_period_start", "current_period_end",
                               "trial_start", "trial_end")}),
        (_("Cancellation"), {"fields": ("cancel_at_period_end", "canceled_at", "ended_at", "paused_at")}),
        (_("Metadata"), {"fields": ("metadata",), "classes": ("collapse",)}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )
    # Everything but metadata moves only through the services (status, plan, periods, cancellation),
    # each of which writes the audit event; a form edit would skip it.
    readonly_fields = ("customer", "plan", "status_badge", "scheduled_plan", "billed_by", "billing_cycle_anchor",
                       "current_period_start", "current_period_end", "trial_start", "trial_end",
                       "cancel_at_period_end", "canceled_at", "ended_at", "paused_at", "created_at", "updated_at")
    inlines = [SubscriptionEventInline]
    actions = ["cancel_now", "cancel_at_period_end"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer", "plan", "scheduled_plan")

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj: Subscription) -> str:
        # Kept current by the live `subscriptions` topic (templates/admin/live/badges.js.html).
        return live_status_badge(topic="subscriptions", obj=obj)

    def has_add_permission(self, request):
        # Subscribing issues the first invoice and credits: payments.services.subscription_start does it.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_cancel_subscription_permission(self, request) -> bool:
        return request.user.has_perm("subscriptions.cancel_subscription")

    @admin.action(description=_("Cancel now"), permissions=["cancel_subscription"])
    def cancel_now(self, request, queryset):
        actor = Actor.of_user(request.user)
        run_for_each(self, request, queryset, lambda subscription: subscription_cancel(
            subscription=subscription, actor=actor, reason="canceled by staff in the back office",
        ), done=_("Canceled {count} subscription(s)."))

    @admin.action(description=_("Cancel at period end"), permissions=["cancel_subscription"])
    def cancel_at_period_end(self, request, queryset):
        actor = Actor.of_user(request.user)
        run_for_each(self, request, queryset, lambda subscription: subscription_cancel(
            subscription=subscription, actor=actor, at_period_end=True,
            reason="cancellation at period end scheduled by staff in the back office",
        ), done=_("Scheduled {count} subscription(s) to cancel at period end."))


@admin.register(SubscriptionEvent)
class SubscriptionEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "subscription", "kind", "from_status", "to_status", "from_plan", "to_plan",
                    "actor_label", "reason")
    list_filter = ("kind", "to_status")
    search_fields = ("subscription__customer__name", "subscription__customer__name_ar",
                     "subscription__customer__email", "actor_label", "reason")
    date_hierarchy = "created_at"
    list_select_related = ("subscription__customer", "subscription__plan", "from_plan", "to_plan")
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(
            "subscription__customer", "subscription__plan", "from_plan", "to_plan", "actor",
        )
