"""The subscription page as the back office shows it: subscriptions.admin plus the actions whose work is a
payments flow. Resuming may restart the billing cycle with an invoice (payments.billing.resume), which the
subscriptions app cannot issue, so the action lives here."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_tools import run_for_each
from core.audit import Actor
from payments.billing.resume import subscription_resume_billed
from subscriptions.admin import SubscriptionAdmin
from subscriptions.models import Subscription


class BackOfficeSubscriptionAdmin(SubscriptionAdmin):
    actions = [*SubscriptionAdmin.actions, "resume"]

    def has_resume_subscription_permission(self, request) -> bool:
        return request.user.has_perm("subscriptions.resume_subscription")

    @admin.action(description=_("Resume (or withdraw a scheduled cancellation)"), permissions=["resume_subscription"])
    def resume(self, request, queryset):
        actor = Actor.of_user(request.user)
        run_for_each(self, request, queryset, lambda subscription: subscription_resume_billed(
            subscription=subscription, actor=actor, reason="resumed by staff in the back office",
        ), done=_("Resumed {count} subscription(s)."))


admin.site.unregister(Subscription)
admin.site.register(Subscription, BackOfficeSubscriptionAdmin)
