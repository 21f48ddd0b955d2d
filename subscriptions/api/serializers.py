"""Shapes of plans, customers and subscriptions in the API (no logic: services do the writes)."""

from rest_framework import serializers

from core.api.fields import JSONObjectField, ObjectIdField
from subscriptions.models import Customer, Plan, Subscription


class ProviderAccountSerializer(serializers.Serializer):
    """A customer's account at one payment rail, read-only. The rows are payments.ProviderAccount, read
    through the customer's `provider_accounts` relation: this app imports nothing from payments."""

    provider = serializers.CharField(read_only=True, help_text="The rail's code (a PAYMENT_PROVIDERS code).")
    provider_customer_id = serializers.CharField(read_only=True, allow_null=True,
                                                 help_text="The customer's id at the provider, if it keeps one.")
    has_default_payment_method = serializers.BooleanField(
        read_only=True, help_text="Whether a payment method is saved there for off-session renewals.")


class ProviderPlanPriceSerializer(serializers.Serializer):
    """What a plan is called at one payment rail (payments.ProviderPlanPrice, through `provider_prices`)."""

    provider = serializers.CharField(read_only=True)
    provider_price_id = serializers.CharField(read_only=True)
    provider_product_id = serializers.CharField(read_only=True)


class PlanSerializer(serializers.ModelSerializer):
    features = serializers.ListField(child=serializers.SlugField(), required=False,
                                     help_text='Feature codes the plan includes, e.g. ["api_access"].')
    provider_prices = ProviderPlanPriceSerializer(many=True, read_only=True,
                                                  help_text="The plan's price id at each payment rail.")

    class Meta:
        model = Plan
        fields = ["id", "code", "name", "name_ar", "description", "amount", "currency", "interval", "interval_count",
                  "trial_days", "credits_per_period", "credits_rollover", "rate_limit_per_minute",
                  "rate_limit_per_hour", "api_calls_per_day", "usage_batch_max_events", "features",
                  "provider_prices", "is_active", "sort_order", "created_at"]
        read_only_fields = ["id", "provider_prices", "created_at"]


class PlanSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["id", "code", "name", "name_ar", "amount", "currency", "interval", "interval_count"]
        read_only_fields = fields


class CustomerSerializer(serializers.ModelSerializer):
    metadata = JSONObjectField(required=False)
    provider_accounts = ProviderAccountSerializer(many=True, read_only=True,
                                                  help_text="The customer's account at each payment rail.")

    class Meta:
        model = Customer
        fields = ["id", "name", "name_ar", "email", "preferred_language", "currency", "external_id", "metadata", "user",
                  "provider_accounts",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "user", "provider_accounts", "created_at", "updated_at"]


class CustomerSelfSerializer(CustomerSerializer):
    """What a customer may change about itself. `external_id` is the merchant's key for the customer
    and unique across customers: letting a customer try values would tell it which ones others have."""

    class Meta(CustomerSerializer.Meta):
        read_only_fields = [*CustomerSerializer.Meta.read_only_fields, "external_id"]


class CustomerCreateSerializer(CustomerSerializer):
    """Staff create a customer, optionally linked to the user that will call the API for it."""

    class Meta(CustomerSerializer.Meta):
        read_only_fields = ["id", "provider_accounts", "created_at", "updated_at"]
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
