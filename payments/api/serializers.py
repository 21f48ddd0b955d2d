from decimal import Decimal

from rest_framework import serializers

from core.api.fields import MinorUnitsField, ObjectIdField
from core.safe_input import BIGINT_MAX
from payments.models import (
    MANUAL_PAYMENT_METHODS,
    CreditPackOrder,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentCreditEntry,
    Refund,
)
from payments.services import ONE_OFF_MAX_LINES
from subscriptions.api.serializers import SubscriptionSerializer
from subscriptions.models import Plan


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["id", "kind", "description", "quantity", "unit_amount", "amount", "period_start", "period_end",
                  "meter", "credits"]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = ["id", "number", "customer", "subscription", "billing_reason", "status", "currency", "subtotal",
                  "total", "amount_paid", "amount_due", "period_start", "period_end", "due_date", "issued_at",
                  "paid_at", "voided_at", "attempt_count", "next_attempt_at", "created_at", "note", "lines"]
        read_only_fields = fields


class OneOffLineSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=300)
    quantity = serializers.DecimalField(
        max_digits=20, decimal_places=6, min_value=Decimal("0.000001"), coerce_to_string=True,
        help_text="A positive whole or decimal number (6 places at most); the line amount is rounded once, half-up.")
    unit_amount = serializers.IntegerField(min_value=0, max_value=BIGINT_MAX,
                                           help_text="Minor units of the invoice's currency per unit.")


class InvoiceCreateSerializer(serializers.Serializer):
    customer = ObjectIdField(help_text="The customer billed.")
    currency = serializers.CharField(min_length=3, max_length=3, help_text="ISO 4217; must be the customer's.")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="",
                                 help_text="A message to the customer, printed on the invoice.")
    lines = OneOffLineSerializer(many=True, allow_empty=False, max_length=ONE_OFF_MAX_LINES)


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "customer", "invoice", "amount", "currency", "method", "status", "amount_refunded",
                  "failure_code", "failure_reason", "reference", "description", "succeeded_at", "created_at"]
        read_only_fields = fields


class ManualPaymentCreateSerializer(serializers.Serializer):
    customer = ObjectIdField(help_text="The customer who paid.")
    amount = MinorUnitsField(help_text="Minor units of `currency`; at most the invoice's amount due.")
    currency = serializers.CharField(min_length=3, max_length=3,
                                     help_text="ISO 4217; the customer's (the invoice's when one is named).")
    method = serializers.ChoiceField(choices=[(m.value, m.label) for m in MANUAL_PAYMENT_METHODS])
    reference = serializers.CharField(max_length=255, required=False, allow_blank=True, default="",
                                      help_text="Check number, bank reference: what finance reconciles against.")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="",
                                        help_text="What the money was for.")
    invoice = ObjectIdField(required=False, allow_null=True, default=None,
                            help_text="The open invoice this pays (paid once fully covered).")


class CreditPackOrderSerializer(serializers.ModelSerializer):
    pack = serializers.CharField(source="pack_code")
    amount = serializers.IntegerField(help_text="Minor units of `currency`.")

    class Meta:
        model = CreditPackOrder
        fields = ["id", "customer", "pack", "credits", "amount", "currency", "status", "invoice", "created_at"]
        read_only_fields = fields


class PaidForSerializer(serializers.Serializer):
    invoice = InvoiceSerializer(allow_null=True, read_only=True, help_text="The invoice paid, with its lines.")
    credit_pack_orders = CreditPackOrderSerializer(
        many=True, read_only=True, source="invoice.credit_pack_orders", default=list,
        help_text="Credit packs ordered on account that the invoice billed.")


class PaymentCreditEntrySerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="entry.id", help_text="The credit ledger entry.")
    kind = serializers.CharField(source="entry.kind")
    amount = serializers.IntegerField(source="entry.amount", help_text="Credits, signed.")
    balance_after = serializers.IntegerField(source="entry.balance_after")
    grant = serializers.IntegerField(source="entry.grant_id", allow_null=True)
    reason = serializers.CharField(source="entry.reason")
    created_at = serializers.DateTimeField(source="entry.created_at")

    class Meta:
        model = PaymentCreditEntry
        fields = ["id", "kind", "amount", "balance_after", "grant", "reason", "created_at"]
        read_only_fields = fields


class PaymentDetailSerializer(PaymentSerializer):
    paid_for = PaidForSerializer(source="*", read_only=True, help_text="What the payment paid for.")
    credits_awarded = PaymentCreditEntrySerializer(
        many=True, read_only=True, source="credit_entries",
        help_text="The credit ledger entries the payment caused when it settled its invoice.")

    class Meta(PaymentSerializer.Meta):
        fields = [*PaymentSerializer.Meta.fields, "paid_for", "credits_awarded"]
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
    id = serializers.CharField(help_text="The provider's id of the setup session (Stripe: seti_...).")
    client_secret = serializers.CharField(
        help_text="Hand to the provider's front-end library (Stripe.js `confirmCardSetup`); the saved card "
                  "becomes the default for renewals.")
    provider = serializers.CharField(help_text="The rail saving the card (a PAYMENT_PROVIDERS code).")
    provider_customer_id = serializers.CharField(help_text="The customer's id at that provider.")
    publishable_key = serializers.CharField(
        help_text="The provider's public key to start its front-end library with (Stripe's publishable key).")


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
    invoice = InvoiceSerializer(allow_null=True, help_text="The open invoice the session collects; null for a "
                                                        "merchant of record (Lemon Squeezy), which bills by itself.")
    subscription = SubscriptionSerializer(allow_null=True,
                                          help_text="The incomplete subscription the payment activates, if any.")
    credit_pack = CreditPackSerializer(allow_null=True, help_text="The pack bought, for a credit-pack checkout.")


class CreditPackOrderCreateSerializer(serializers.Serializer):
    pack = serializers.CharField(max_length=64, help_text="A credit pack code (GET checkout/credit-packs/).")
    customer = ObjectIdField(required=False, help_text="Staff only: the customer who buys.")

