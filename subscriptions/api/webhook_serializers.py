"""Outbound webhook endpoints and the delivery log through the API (staff only)."""

import django_filters
from rest_framework import serializers

from core.api.filters import ApiFilterSet, DateTimeRangeFilter
from outbound_webhooks.models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "enabled", "failing_since", "disabled_at",
                  "disabled_reason", "created_at", "updated_at"]
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret: give it to the receiver. "
                                                             "Shown here once; staff also see it in the admin.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointWriteSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500, help_text="http(s) URL of the receiver; public addresses only "
                                                          "unless OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES.")
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), allow_empty=False,
                                        max_length=len(EventType.values) * 2)
    description = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    secret = serializers.CharField(min_length=16, max_length=100, required=False, default="",
                                   help_text="Leave out to have one generated (returned once, in the answer).")
    enabled = serializers.BooleanField(required=False, default=True)


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["id", "created_at", "succeeded", "manual", "response_code", "response_excerpt", "error",
                  "duration_ms"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(source="event.event_id", read_only=True)
    event_type = serializers.CharField(source="event.event_type", read_only=True)
    object_type = serializers.CharField(source="event.object_type", read_only=True)
    object_id = serializers.IntegerField(source="event.object_id", read_only=True)
    sequence = serializers.IntegerField(source="event.sequence", read_only=True)
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "event_id", "event_type", "object_type", "object_id", "sequence", "status",
                  "attempts", "last_response_code", "last_error", "next_attempt_at", "retry_until", "created_at",
                  "delivered_at", "attempt_log"]
        read_only_fields = fields


class WebhookDeliveryFilter(ApiFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DeliveryStatus.choices)
    event_type = django_filters.MultipleChoiceFilter(field_name="event__event_type", choices=EventType.choices)
    created = DateTimeRangeFilter(field_name="created_at")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event_type", "created"]
