"""Paying through a rail that sends the customer to its own page (PayPal's approve links): save a payment
method by approval and confirm it afterwards, and pay any open invoice (a one-off invoice included) on a
rail's hosted checkout. Every provider call is a service of payments.checkout, through the contract;
a rail not configured answers 503, one not installed or without the capability 400 naming `provider`."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from core.api.errors import WRITE_ERRORS, error_responses
from core.api.fields import ObjectIdField
from core.audit import Actor
from payments.api.serializers import CheckoutSessionSerializer
from payments.checkout import (
    checkout_invoice_start,
    checkout_redirect_urls,
    payment_method_setup_complete,
    payment_method_setup_start,
)
from payments.selectors import invoice_list
from subscriptions.api.base import IDEMPOTENCY_KEY_HEADER, ApiViewMixin
from subscriptions.api.permissions import SIGNED_IN_AND_ALLOWED

# Anything that calls a payment provider: it may fail (502) or not be configured (503).
PROVIDER_WRITE_ERRORS = (404, *WRITE_ERRORS, 502, 503)

_PROVIDER_HELP = "The rail (a PAYMENT_PROVIDERS code such as `paypal`); default: the preferred one offering it."


class _RedirectFields(serializers.Serializer):
    customer = ObjectIdField(required=False, help_text="Staff only: the customer.")
    provider = serializers.CharField(max_length=32, required=False, default="", allow_blank=True,
                                     help_text=_PROVIDER_HELP)
    success_url = serializers.URLField(
        max_length=2048, required=False,
        help_text="Where the provider sends the browser after approving; its host must be in "
                  "CHECKOUT_REDIRECT_HOSTS. Default: CHECKOUT_SUCCESS_URL.")
    cancel_url = serializers.URLField(max_length=2048, required=False,
                                      help_text="Where it sends the browser when the customer gives up; same rule.")


class ApprovalStartSerializer(_RedirectFields):
    pass


class ApprovalSerializer(serializers.Serializer):
    provider = serializers.CharField()
    id = serializers.CharField(help_text="The provider's id of the setup session (PayPal: a setup token).")
    url = serializers.URLField(help_text="Send the customer's browser here to approve saving the method.")


class ApprovalConfirmSerializer(serializers.Serializer):
    customer = ObjectIdField(required=False, help_text="Staff only: the customer.")
    provider = serializers.CharField(max_length=32, help_text="The rail the approval was made at.")
    setup_token = serializers.CharField(max_length=255, help_text="The approved session's id (PayPal appends it "
                                                                  "to the return URL as `approval_token_id`).")


class SavedMethodSerializer(serializers.Serializer):
    provider = serializers.CharField()
    provider_customer_id = serializers.CharField(help_text="The customer's id at that provider.")
    default_payment_method = serializers.CharField(help_text="The saved method renewals are charged to.")


class InvoiceCheckoutSerializer(_RedirectFields):
    # The invoice names its customer: a `customer` field would only be a second, contradictable answer.
    customer = None
    invoice = ObjectIdField(help_text="The open invoice to pay (404 unless it is one the caller may see).")


class PaymentMethodApprovalViewSet(ApiViewMixin, viewsets.GenericViewSet):
    """Saving a payment method on a rail where the customer approves on the provider's page."""

    serializer_class = ApprovalStartSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    # Saving a method writes the customer's provider account, as saving a card does.
    required_permissions = {"create": "subscriptions.change_customer", "confirm": "subscriptions.change_customer"}
    pagination_class = None
    filter_backends = []

    @extend_schema(
        summary="Start saving a payment method by approval (PayPal wallet)", request=ApprovalStartSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        description="Creates a setup session at the rail and answers its approve `url`; after approving, the "
                    "provider returns the browser to `success_url`, and `confirm` keeps the method. 400 naming "
                    "`provider` for a rail that is not installed or saves no methods; 503 when not configured.",
        examples=[OpenApiExample("PayPal", value={"provider": "paypal"}, request_only=True)],
        responses={201: ApprovalSerializer, **error_responses(*PROVIDER_WRITE_ERRORS)},
    )
    def create(self, request):
        serializer = ApprovalStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = self.acting_customer(data.get("customer"))
        success_url, cancel_url = checkout_redirect_urls(success_url=data.get("success_url"),
                                                         cancel_url=data.get("cancel_url"))
        _, session = payment_method_setup_start(customer=customer, provider=data["provider"],
                                                return_url=success_url, cancel_url=cancel_url)
        return Response(ApprovalSerializer({"provider": session.provider, "id": session.reference,
                                            "url": session.url}).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Keep the payment method the customer approved", request=ApprovalConfirmSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        description="Turns the approved setup session into the saved method renewals are charged to. 400 "
                    "`setup_token_mismatch` when the approval was another customer's.",
        responses={200: SavedMethodSerializer, **error_responses(*PROVIDER_WRITE_ERRORS)},
    )
    @action(detail=False, methods=["post"], serializer_class=ApprovalConfirmSerializer)
    def confirm(self, request):
        serializer = ApprovalConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = self.acting_customer(data.get("customer"))
        account = payment_method_setup_complete(customer=customer, provider=data["provider"],
                                                reference=data["setup_token"], actor=Actor.of_user(request.user))
        return Response(SavedMethodSerializer({"provider": account.provider, "provider_customer_id": account.reference,
                                               "default_payment_method": account.default_payment_method}).data)


class InvoiceCheckoutViewSet(ApiViewMixin, viewsets.GenericViewSet):
    """Pay one open invoice (a one-off invoice, a renewal in dunning) on a rail's hosted checkout page."""

    serializer_class = InvoiceCheckoutSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    # Paying one's own invoice changes it as checkout for a credit pack does.
    required_permissions = {"create": "payments.change_invoice"}
    pagination_class = None
    filter_backends = []

    @extend_schema(
        summary="Pay an open invoice on a rail's checkout page (PayPal order, Stripe Checkout)",
        request=InvoiceCheckoutSerializer, parameters=[IDEMPOTENCY_KEY_HEADER],
        description="Holds the invoice off off-session collection for a day and opens the rail's checkout for "
                    "its amount due; send the browser to `url`. Paying settles the invoice (the rail's webhook). "
                    "404 for another customer's invoice; 400 `nothing_to_pay` unless it is open with "
                    "something due.",
        responses={201: CheckoutSessionSerializer, **error_responses(*PROVIDER_WRITE_ERRORS)},
    )
    def create(self, request):
        serializer = InvoiceCheckoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        invoice = self.scoped(invoice_list()).filter(pk=data["invoice"]).first()
        if invoice is None:
            # Like a path id: another customer's invoice and a missing one are the same 404.
            raise NotFound(_("No such invoice."))
        success_url, cancel_url = checkout_redirect_urls(success_url=data.get("success_url"),
                                                         cancel_url=data.get("cancel_url"))
        start = checkout_invoice_start(invoice=invoice, actor=Actor.of_user(request.user), success_url=success_url,
                                       cancel_url=cancel_url, provider=data["provider"])
        return Response(CheckoutSessionSerializer({
            "id": start.session.reference, "url": start.session.url, "invoice": start.invoice, "subscription": None,
            "credit_pack": None}).data, status=status.HTTP_201_CREATED)
