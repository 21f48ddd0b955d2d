from rest_framework import serializers

from core.api.fields import MinorUnitsField, ObjectIdField
from payments.models import CreditPackOrder, Invoice, InvoiceLine, Payment, Refund
from subscriptions.api.serializers import SubscriptionSerializer
from subscriptions.models import Plan


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["id", "kind", "description", "quantity", "unit_amount", "amount", "period_start", "period_end",
                  "meter"]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = ["id", "number", "customer", "subscription", "billing_reason", "status", "currency", "subtotal",
                  "total", "amount_paid", "amount_due", "period_start", "period_end", "due_date", "issued_at",
                  "paid_at", "voided_at", "attempt_count", "next_attempt_at", "created_at", "lines"]
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "customer", "invoice", "amount", "currency", "method", "status", "amount_refunded",
                  "failure_code", "failure_reason", "reference", "succeeded_at", "created_at"]
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "payment", "amount", "currency", "status", "reason", "actor_label", "created_at"]
        read_only_fields = fields


class RefundCreateSerializer(serializers.Serializer):
    amount = MinorUnitsField(required=False, allow_null=True, default=None,
                                      help_text="Minor units; leave out to refund what is left.")
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class SubscriptionStartSerializer(serializers.Serializer):
    subscription = SubscriptionSerializer()
    invoice = InvoiceSerializer(allow_null=True, help_text="The first invoice of a paid plan without a trial.")


class PlanChangeSerializer(serializers.Serializer):
    subscription = SubscriptionSerializer()
    effective = serializers.ChoiceField(choices=["immediate", "period_end"],
                                        help_text="Upgrades apply now (prorated); downgrades at the period end.")
    effective_at = serializers.DateTimeField()
    proration_amount = serializers.IntegerField(help_text="Minor units charged for the rest of the period.")
    invoice = InvoiceSerializer(allow_null=True, help_text="The proration invoice, if one was issued.")


class SetupIntentCreateSerializer(serializers.Serializer):
    customer = ObjectIdField(required=False, help_text="Staff only: the customer saving a card.")


class SetupIntentSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The SetupIntent's Stripe id (seti_...).")
    client_secret = serializers.CharField(
        help_text="Hand to Stripe.js (`stripe.confirmCardSetup`); the saved card becomes the default for renewals.")
    stripe_customer_id = serializers.CharField()
    publishable_key = serializers.CharField(help_text="The Stripe publishable key to initialise Stripe.js with.")


class _CheckoutRedirectSerializer(serializers.Serializer):
    customer = ObjectIdField(required=False, help_text="Staff only: the customer who pays.")
    provider = serializers.CharField(
        max_length=32, required=False, default="", allow_blank=True,
        help_text="The rail whose checkout page to use (the code of an installed PAYMENT_PROVIDERS rail); "
                  "default: the preferred one.")
    success_url = serializers.URLField(
        max_length=2048, required=False,
        help_text="Where Checkout sends the browser after paying; its host must be in CHECKOUT_REDIRECT_HOSTS. "
                  "Default: CHECKOUT_SUCCESS_URL.")
    cancel_url = serializers.URLField(
        max_length=2048, required=False,
        help_text="Where Checkout sends the browser when the customer gives up; same rule. "
                  "Default: CHECKOUT_CANCEL_URL.")


class CheckoutSubscriptionCreateSerializer(_CheckoutRedirectSerializer):
    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.all(), help_text="A paid, active plan.")


class CheckoutCreditPackCreateSerializer(_CheckoutRedirectSerializer):
    pack = serializers.CharField(max_length=64, help_text="A credit pack code (GET checkout/credit-packs/).")


class CreditPackSerializer(serializers.Serializer):
    code = serializers.CharField()
    credits = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="Minor units of `currency`.")
    currency = serializers.CharField()


class CheckoutSessionSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The Checkout Session's Stripe id (cs_...).")
    url = serializers.URLField(help_text="Send the customer's browser here to pay.")
    invoice = InvoiceSerializer(help_text="The open invoice the session collects.")
    subscription = SubscriptionSerializer(allow_null=True,
                                          help_text="The incomplete subscription the payment activates, if any.")
    credit_pack = CreditPackSerializer(allow_null=True, help_text="The pack bought, for a credit-pack checkout.")


class CreditPackOrderCreateSerializer(serializers.Serializer):
    pack = serializers.CharField(max_length=64, help_text="A credit pack code (GET checkout/credit-packs/).")
    customer = ObjectIdField(required=False, help_text="Staff only: the customer who buys.")


class CreditPackOrderSerializer(serializers.ModelSerializer):
    pack = serializers.CharField(source="pack_code")
    amount = serializers.IntegerField(help_text="Minor units of `currency`.")

    class Meta:
        model = CreditPackOrder
        fields = ["id", "customer", "pack", "credits", "amount", "currency", "status", "invoice", "created_at"]
        read_only_fields = fields
