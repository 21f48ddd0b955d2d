"""Back office pages: endpoints (staff register and edit them), events and the delivery log (read-only,
with a redeliver action)."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_tools import ReadOnlyAdminMixin, ReadOnlyTabularInline, run_for_each
from outbound_webhooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from outbound_webhooks.network import UnsafeWebhookUrl, webhook_url_check_syntax
from outbound_webhooks.services import webhook_delivery_redeliver, webhook_endpoint_create, webhook_endpoint_update


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)
    secret = forms.CharField(required=False, max_length=100,
                             help_text=_("Leave empty to generate one (new endpoints) or keep the current one."))

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "secret", "enabled"]

    def clean_url(self) -> str:
        try:
            webhook_url_check_syntax(url=self.cleaned_data["url"])
        except UnsafeWebhookUrl as exc:
            raise forms.ValidationError(str(exc)) from exc
        return self.cleaned_data["url"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "enabled", "failing_since", "disabled_at", "created_at")
    list_filter = ("enabled",)
    search_fields = ("url", "description")
    date_hierarchy = "created_at"
    readonly_fields = ("signing_secret", "failing_since", "disabled_at", "disabled_reason", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # The secret signs what the merchant's systems trust: shown to staff who may change the endpoint, not
        # to every viewer (auditors).
        fields = super().get_readonly_fields(request, obj)
        if not self.has_change_permission(request, obj):
            fields = tuple(f for f in fields if f != "signing_secret")
        return fields

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if not self.has_change_permission(request, obj):
            fields = [f for f in fields if f not in ("signing_secret", "secret")]
        return fields

    @admin.display(description=_("Signing secret (give it to the receiver)"))
    def signing_secret(self, obj: WebhookEndpoint) -> str:
        return obj.secret

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields["secret"].initial = ""
        return form

    def save_model(self, request, obj, form, change):
        # The form checked what the services check, so they refuse nothing here.
        names = ("url", "event_types", "description", "secret", "enabled")
        fields = {name: form.cleaned_data[name] for name in names}
        saved = webhook_endpoint_update(endpoint=obj, **fields) if change else webhook_endpoint_create(**fields)
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its deliveries are the log; disable it instead


class WebhookAttemptInline(ReadOnlyTabularInline):
    model = WebhookAttempt
    fields = ("created_at", "succeeded", "manual", "response_code", "response_excerpt", "error", "duration_ms")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The delivery log: every event for every endpoint, its status, and each attempt's answer."""

    list_display = ("created_at", "event", "endpoint", "status", "attempts", "last_response_code", "next_attempt_at")
    list_filter = ("status", "event__event_type", "endpoint")
    search_fields = ("event__event_id", "endpoint__url", "last_error")
    date_hierarchy = "created_at"
    readonly_fields = ("event", "endpoint", "status", "attempts", "last_response_code", "last_error",
                       "next_attempt_at", "retry_until", "created_at", "delivered_at", "updated_at")
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    @admin.action(description=_("Redeliver"), permissions=["redeliver"])
    def redeliver(self, request, queryset):
        run_for_each(self, request, queryset, lambda delivery: webhook_delivery_redeliver(delivery=delivery),
                     done=_("{count} deliveries will be sent again."))

    def has_redeliver_permission(self, request) -> bool:
        return request.user.has_perm("outbound_webhooks.redeliver_webhookdelivery")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "event_type", "object_type", "object_id", "sequence", "event_id")
    list_filter = ("event_type", "object_type")
    search_fields = ("event_id", "object_id")
    date_hierarchy = "created_at"
    readonly_fields = ("event_id", "event_type", "object_type", "object_id", "sequence", "data", "created_at")
