from django.contrib import admin, messages

from billing_project.audit import Actor
from payments.models import StripeEvent, StripeEventStatus
from payments.webhooks.services import stripe_event_reprocess


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    """The webhook inbox, read-only: what Stripe sent is history. Staff may only reprocess."""

    list_display = ["event_id", "type", "status", "attempts", "stripe_created_at", "received_at", "processed_at"]
    list_filter = ["status", "type", "livemode"]
    search_fields = ["event_id", "type"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in StripeEvent._meta.fields]
    actions = ["reprocess"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_reprocess_permission(self, request):
        # Editing is off for everyone; reprocessing is for staff who may change events.
        return request.user.has_perm("payments.change_stripeevent")

    @admin.action(description="Reprocess the selected events", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        actor = Actor.of_user(request.user)
        events = queryset.order_by("stripe_created_at", "id")
        results = [stripe_event_reprocess(event=event, actor=actor) for event in events]
        failed = [e.event_id for e in results if e.status == StripeEventStatus.FAILED]
        self.message_user(request, f"Reprocessed {len(results) - len(failed)} event(s).", messages.SUCCESS)
        if failed:
            self.message_user(request, f"Still failing: {', '.join(failed)}", messages.ERROR)
