"""The admin of a rail's webhook inbox, the same for every rail: read-only (it is the record of what the
provider said and when), with a reprocess action. The rows are the shared ProviderEvent inbox's, filtered
to the rail by its proxy model; who may see or reprocess them is the inbox's permission
(payments.view_providerevent / change_providerevent)."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core.admin_tools import ReadOnlyAdminMixin
from core.audit import Actor
from payments.providers.models import ProviderEventStatus

_VIEW = "payments.view_providerevent"
_CHANGE = "payments.change_providerevent"


class ProviderEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # The rail's `<rail>_event_reprocess(event=, actor=)`, set by each rail's admin as a staticmethod.
    event_reprocess: Callable
    list_display = ("event_id", "type", "status", "attempts", "provider_created_at", "received_at", "processed_at")
    list_filter = ("status", "type")
    search_fields = ("event_id", "type", "error")
    date_hierarchy = "received_at"
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("event_id", "type", "api_version")}),
        (_("Processing"), {"fields": ("status", "attempts", "processed_at", "error")}),
        (_("Times"), {"fields": ("provider_created_at", "received_at")}),
        (_("Payload"), {"fields": ("payload",)}),
    )
    actions = ("reprocess",)

    def has_module_permission(self, request):
        return request.user.has_perm(_VIEW) or request.user.has_perm(_CHANGE)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(_VIEW) or request.user.has_perm(_CHANGE)

    def has_reprocess_permission(self, request):
        # Editing is off for everyone; reprocessing is for staff who may change events.
        return request.user.has_perm(_CHANGE)

    @admin.action(description=_("Reprocess the selected events"), permissions=["reprocess"])
    def reprocess(self, request, queryset):
        actor = Actor.of_user(request.user)
        results = [self.event_reprocess(event=event, actor=actor)
                   for event in queryset.order_by("provider_created_at", "id")]
        failed = [e.event_id for e in results if e.status == ProviderEventStatus.FAILED]
        self.message_user(request, _("Reprocessed %(count)s event(s).") % {"count": len(results) - len(failed)},
                          messages.SUCCESS)
        if failed:
            self.message_user(request, _("Still failing: %(events)s") % {"events": ", ".join(failed)}, messages.ERROR)
