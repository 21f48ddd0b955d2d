from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_tools import ReadOnlyAdminMixin, run_for_each
from notifications.models import EmailLog
from notifications.services import email_resend_request


@admin.register(EmailLog)
class EmailLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every email the system sent or tried to send, as the customer got it; resend sends a copy."""

    list_display = ("created_at", "kind", "recipient", "subject", "status", "attempts", "resend_count", "sent_at")
    list_filter = ("kind", "status")
    search_fields = ("recipient", "event_key", "subject")
    date_hierarchy = "created_at"
    readonly_fields = ("event_key", "recipient", "kind", "subject", "status", "attempts", "resend_count",
                       "last_error", "created_at", "sent_at", "updated_at", "body_text", "body_html")
    actions = ["resend"]

    @admin.action(description=_("Resend"), permissions=["resend"])
    def resend(self, request, queryset):
        run_for_each(self, request, queryset, lambda log: email_resend_request(email_log=log),
                     done=_("{count} email(s) will be sent again."))

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("notifications.resend_emaillog")
