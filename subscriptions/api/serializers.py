"""Shapes of plans, customers and subscriptions in the API (no logic: services do the writes)."""

from rest_framework import serializers

from core.api.fields import JSONObjectField, ObjectIdField
from subscriptions.models import Customer, Plan, Subscription


class PlanSerializer(serializers.ModelSerializer):
    features = serializers.ListField(child=serializers.SlugField(), required=False,
                                     help_text='Feature codes the plan includes, e.g. ["api_access"].')

    class Meta:
        model = Plan
        fields = ["id", "code", "name", "description", "amount", "currency", "interval", "interval_count",
                  "trial_days", "credits_per_period", "credits_rollover", "rate_limit_per_minute",
                  "rate_limit_per_hour", "api_calls_per_day", "usage_batch_max_events", "features",
                  "stripe_price_id", "is_active", "sort_order", "created_at"]
        read_only_fields = ["id", "created_at"]


class PlanSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["id", "code", "name", "amount", "currency", "interval", "interval_count"]
        read_only_fields = fields


class CustomerSerializer(serializers.ModelSerializer):
    metadata = JSONObjectField(required=False)

    class Meta:
        model = Customer
        fields = ["id", "name", "email", "currency", "external_id", "metadata", "user", "stripe_customer_id",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "user", "stripe_customer_id", "created_at", "updated_at"]


class CustomerSelfSerializer(CustomerSerializer):
    """What a customer may change about itself. `external_id` is the merchant's key for the customer
    and unique across customers: letting a customer try values would tell it which ones others have."""

    class Meta(CustomerSerializer.Meta):
        read_only_fields = [*CustomerSerializer.Meta.read_only_fields, "external_id"]


class CustomerCreateSerializer(CustomerSerializer):
    """Staff create a customer, optionally linked to the user that will call the API for it."""

    class Meta(CustomerSerializer.Meta):
        read_only_fields = ["id", "stripe_customer_id", "created_at", "updated_at"]
        extra_kwargs = {"user": {"required": False, "allow_null": True}}


class SubscriptionSerializer(serializers.ModelSerializer):
    plan = PlanSummarySerializer(read_only=True)

    class Meta:
        model = Subscription
        fields = ["id", "customer", "plan", "status", "billing_cycle_anchor", "current_period_start",
                  "current_period_end", "trial_start", "trial_end", "cancel_at_period_end", "scheduled_plan",
                  "canceled_at", "ended_at", "paused_at", "metadata", "created_at", "updated_at"]
        read_only_fields = fields


class SubscriptionCreateSerializer(serializers.Serializer):
    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.all())
    customer = ObjectIdField(required=False, help_text="Staff only: the customer to subscribe.")
    with_trial = serializers.BooleanField(default=True, help_text="Start with the plan's trial, if it has one.")


class SubscriptionCancelSerializer(serializers.Serializer):
    at_period_end = serializers.BooleanField(
        default=False, help_text="True: keep the subscription until the current period ends; false: cancel now.")
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class SubscriptionChangePlanSerializer(serializers.Serializer):
    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.all())
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
