"""The subscription page as the back office shows it: subscriptions.admin plus the actions whose work is a
payments flow. Resuming may restart the billing cycle with an invoice (payments.billing.resume), which the
subscriptions app cannot issue, so the action lives here."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_tools import run_for_each
from core.audit import Actor
from payments.services.rail_subscriptions import subscription_cancel_requested, subscription_resume_requested
from subscriptions.admin import SubscriptionAdmin
from subscriptions.models import Subscription


class BackOfficeSubscriptionAdmin(SubscriptionAdmin):
    actions = [*SubscriptionAdmin.actions, "resume"]
    list_display = (*SubscriptionAdmin.list_display, "billed_by")
    list_filter = (*SubscriptionAdmin.list_filter, "billed_by")

    # Staff cancel and resume every subscription alike: one a merchant of record bills is changed there and
    # its webhook moves it here (payments.services.rail_subscriptions).
    @admin.action(description=_("Cancel now"), permissions=["cancel_subscription"])
    def cancel_now(self, request, queryset):
        actor = Actor.of_user(request.user)
        run_for_each(self, request, queryset, lambda subscription: subscription_cancel_requested(
            subscription=subscription, actor=actor, reason="canceled by staff in the back office",
        ), done=_("Canceled {count} subscription(s)."))

    @admin.action(description=_("Cancel at period end"), permissions=["cancel_subscription"])
    def cancel_at_period_end(self, request, queryset):
        actor = Actor.of_user(request.user)
        run_for_each(self, request, queryset, lambda subscription: subscription_cancel_requested(
            subscription=subscription, actor=actor, at_period_end=True,
            reason="cancellation at period end scheduled by staff in the back office",
        ), done=_("Scheduled {count} subscription(s) to cancel at period end."))

    def has_resume_subscription_permission(self, request) -> bool:
        return request.user.has_perm("subscriptions.resume_subscription")

    @admin.action(description=_("Resume (or withdraw a scheduled cancellation)"), permissions=["resume_subscription"])
    def resume(self, request, queryset):
        actor = Actor.of_user(request.user)
        run_for_each(self, request, queryset, lambda subscription: subscription_resume_requested(
            subscription=subscription, actor=actor, reason="resumed by staff in the back office",
        ), done=_("Resumed {count} subscription(s)."))


admin.site.unregister(Subscription)
admin.site.register(Subscription, BackOfficeSubscriptionAdmin)
