from rest_framework import serializers

from payments.models import Invoice, InvoiceLine, Payment, Refund
from subscriptions.api.serializers import SubscriptionSerializer


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
    amount = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None,
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
