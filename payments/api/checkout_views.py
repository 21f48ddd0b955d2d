"""Paying by card from a customer's own front end: save a card (a setup session for the provider's
front-end library) and the provider's hosted checkout for a new subscription or a credit pack. Every
provider call is a service of payments.checkout (through the provider contract); without a configured
rail offering the capability they answer 503."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.api.errors import DETAIL_ERRORS, WRITE_ERRORS, error_responses
from core.audit import Actor
from payments.api.serializers import (
    CheckoutCreditPackCreateSerializer,
    CheckoutSessionSerializer,
    CheckoutSubscriptionCreateSerializer,
    CreditPackSerializer,
    SetupIntentCreateSerializer,
    SetupIntentSerializer,
)
from payments.checkout import (
    checkout_credit_pack_buy,
    checkout_redirect_urls,
    checkout_subscription_start,
    credit_pack_list,
    payment_method_setup_start,
)
from subscriptions.api.base import IDEMPOTENCY_KEY_HEADER, ApiViewMixin
from subscriptions.api.client import api_client_forget
from subscriptions.api.permissions import SIGNED_IN_AND_ALLOWED

# A card is saved or paid for on the customer's account: like subscribing, it needs only a signed-in
# user (not the api_access feature), so a customer on a plan without API access can still pay.
# Anything that calls a payment provider: it may fail (502) or not be configured (503).
PROVIDER_WRITE_ERRORS = (404, *WRITE_ERRORS, 502, 503)

_URLS = {"success_url": "https://app.example.com/billing/done?session={CHECKOUT_SESSION_ID}",
         "cancel_url": "https://app.example.com/billing"}


class PaymentMethodViewSet(ApiViewMixin, viewsets.GenericViewSet):
    """`payment-methods/setup-intent/`: save a card for renewals."""

    serializer_class = SetupIntentCreateSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    # Saving a card writes the customer's provider account (its ids and default payment method).
    required_permissions = {"setup_intent": "subscriptions.change_customer"}
    pagination_class = None
    filter_backends = []

    @extend_schema(
        summary="Start saving a card (a setup session: Stripe's SetupIntent)", request=SetupIntentCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        description="With the preferred rail that saves payment methods (`provider`): creates the customer there "
                    "on first use and a new setup session; confirm its `client_secret` with the provider's "
                    "front-end library (Stripe.js), started with `publishable_key`. When it succeeds, the card "
                    "becomes the default for renewals (the provider's webhook). 503 when no such rail is "
                    "configured.",
        examples=[OpenApiExample("Yourself", value={}, request_only=True),
                  OpenApiExample("Setup intent", response_only=True, value={
                      "id": "seti_1Q2w3E", "client_secret": "seti_1Q2w3E_secret_abc",
                      "provider": "stripe", "provider_customer_id": "cus_R4t5Y6",
                      "publishable_key": "pk_live_..."})],
        responses={201: SetupIntentSerializer, **error_responses(*PROVIDER_WRITE_ERRORS)},
    )
    @action(detail=False, methods=["post"], url_path="setup-intent")
    def setup_intent(self, request):
        serializer = SetupIntentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = self.acting_customer(serializer.validated_data.get("customer"))
        account, setup = payment_method_setup_start(customer=customer)
        return Response(SetupIntentSerializer({
            "id": setup.reference, "client_secret": setup.client_secret, "provider": setup.provider,
            "provider_customer_id": account.reference, "publishable_key": setup.publishable_key}).data,
            status=status.HTTP_201_CREATED)


class CheckoutViewSet(ApiViewMixin, viewsets.GenericViewSet):
    """`checkout/subscription/`, `checkout/credit-pack/` and the pack catalog `checkout/credit-packs/`."""

    serializer_class = CheckoutSessionSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    # A pack bought through Checkout is the pay-now twin of a credit pack order.
    required_permissions = {
        "subscription": "subscriptions.add_subscription",
        "credit_pack": "payments.add_creditpackorder",
        "credit_packs": "payments.view_creditpackorder",
    }
    pagination_class = None
    filter_backends = []

    def _redirects(self, data) -> tuple[str, str]:
        return checkout_redirect_urls(success_url=data.get("success_url"), cancel_url=data.get("cancel_url"))

    @extend_schema(
        summary="Subscribe through Stripe Checkout", request=CheckoutSubscriptionCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        description="Starts the subscription `incomplete` with its first invoice and opens a Checkout Session "
                    "for that invoice; send the browser to `url`. Paying activates the subscription and saves "
                    "the card for renewals; an expired session cancels it. 409 `subscription_exists` when the "
                    "customer already has a live subscription (change its plan instead); 400 `nothing_to_pay` "
                    "for a free plan (`POST subscriptions/`). With `provider` naming a merchant of record (Lemon "
                    "Squeezy) nothing is created here: `url` is its checkout, carrying the customer and plan in "
                    "its custom data, `invoice` and `subscription` are null, and its webhooks create the "
                    "mirrored subscription once paid (400 `plan_not_on_rail` for a plan it does not sell).",
        examples=[OpenApiExample("Pro plan", value={"plan": 3, **_URLS}, request_only=True)],
        responses={201: CheckoutSessionSerializer, **error_responses(*PROVIDER_WRITE_ERRORS)},
    )
    @action(detail=False, methods=["post"], serializer_class=CheckoutSubscriptionCreateSerializer)
    def subscription(self, request):
        serializer = CheckoutSubscriptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = self.acting_customer(data.get("customer"))
        success_url, cancel_url = self._redirects(data)
        start = checkout_subscription_start(customer=customer, plan=data["plan"], actor=Actor.of_user(request.user),
                                            success_url=success_url, cancel_url=cancel_url, provider=data["provider"])
        # The plan (incomplete for now) is the customer's current one: its limits apply from here.
        api_client_forget(user_id=customer.user_id)
        return Response(CheckoutSessionSerializer({
            "id": start.session.reference, "url": start.session.url, "invoice": start.invoice,
            "subscription": start.subscription, "credit_pack": None}).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Buy a credit pack through Stripe Checkout", request=CheckoutCreditPackCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        description="Issues a credit-pack invoice at the pack's price in the customer's currency and opens a "
                    "Checkout Session for it; the credits are granted when it is paid. 400 "
                    "`unknown_credit_pack` for a pack not sold in the customer's currency.",
        examples=[OpenApiExample("500 credits", value={"pack": "credits-500", **_URLS}, request_only=True)],
        responses={201: CheckoutSessionSerializer, **error_responses(*PROVIDER_WRITE_ERRORS)},
    )
    @action(detail=False, methods=["post"], url_path="credit-pack", serializer_class=CheckoutCreditPackCreateSerializer)
    def credit_pack(self, request):
        serializer = CheckoutCreditPackCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = self.acting_customer(data.get("customer"))
        success_url, cancel_url = self._redirects(data)
        pack, start = checkout_credit_pack_buy(customer=customer, pack_code=data["pack"],
                                               actor=Actor.of_user(request.user), success_url=success_url,
                                               cancel_url=cancel_url, provider=data["provider"])
        return Response(CheckoutSessionSerializer({
            "id": start.session.reference, "url": start.session.url, "invoice": start.invoice, "subscription": None,
            "credit_pack": pack}).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Credit packs on sale, in your currency",
        parameters=[OpenApiParameter("currency", str, description="Staff: the currency to list (required).")],
        examples=[OpenApiExample("Packs", response_only=True, value=[
            {"code": "credits-100", "credits": 100, "amount": 500, "currency": "USD"}])],
        responses={200: CreditPackSerializer(many=True), **error_responses(400, *DETAIL_ERRORS)},
    )
    @action(detail=False, methods=["get"], url_path="credit-packs", serializer_class=CreditPackSerializer)
    def credit_packs(self, request):
        if self.api_client.is_staff:
            currency = request.query_params.get("currency", "").upper()
            if not currency:
                raise ValidationError({"currency": ["Staff must say which currency to list."]})
        else:
            currency = self.acting_customer().currency
        return Response(CreditPackSerializer(credit_pack_list(currency=currency), many=True).data)

