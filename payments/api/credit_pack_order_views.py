"""`credits/orders/`: credit packs bought on account, billed on the subscription's next renewal invoice
(Checkout, `checkout/credit-pack/`, is the pay-now alternative)."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.errors import DETAIL_ERRORS, DETAIL_WRITE_ERRORS, READ_ERRORS, WRITE_ERRORS, error_responses
from core.audit import Actor
from payments.api.filters import CreditPackOrderFilter
from payments.api.serializers import CreditPackOrderCreateSerializer, CreditPackOrderSerializer
from payments.selectors import credit_pack_order_list
from payments.services.credit_pack_orders import credit_pack_order_cancel, credit_pack_order_place
from subscriptions.api.base import IDEMPOTENCY_KEY_HEADER, ApiViewMixin
from subscriptions.api.permissions import SIGNED_IN_AND_ALLOWED

_ORDER_EXAMPLE = OpenApiExample("Pending order", response_only=True, value={
    "id": 7, "customer": 42, "pack": "credits-500", "credits": 500, "amount": 2000, "currency": "USD",
    "status": "pending", "invoice": None, "created_at": "2026-02-03T10:00:00Z"})


# Buying on account, like Checkout, needs only a signed-in user (not the api_access feature).
@extend_schema_view(
    list=extend_schema(summary="List credit pack orders",
                       responses={200: CreditPackOrderSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="Get a credit pack order",
                           responses={200: CreditPackOrderSerializer, **error_responses(*DETAIL_ERRORS)}),
    create=extend_schema(
        summary="Order a credit pack, billed on the next renewal", request=CreditPackOrderCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        description="Priced from the catalog in the customer's currency. The order stays `pending` until the "
                    "subscription renews, whose invoice gets one `credit_pack` line for it (`invoiced`); the "
                    "credits are granted when that invoice is paid (`fulfilled`). 400 `unknown_credit_pack` "
                    "for a pack not sold in the customer's currency, 400 `no_renewal_to_bill` without a "
                    "trialing, active or past-due subscription.",
        examples=[OpenApiExample("500 credits", value={"pack": "credits-500"}, request_only=True), _ORDER_EXAMPLE],
        responses={201: CreditPackOrderSerializer, **error_responses(404, *WRITE_ERRORS)}),
)
class CreditPackOrderViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                             mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = CreditPackOrderSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    required_permissions = {
        "list": "payments.view_creditpackorder",
        "retrieve": "payments.view_creditpackorder",
        "create": "payments.add_creditpackorder",
        "cancel": "payments.change_creditpackorder",
    }
    filterset_class = CreditPackOrderFilter
    ordering_fields = ["id", "created_at", "status"]
    ordering = ["-id"]

    def get_queryset(self):
        return self.scoped(credit_pack_order_list())

    def create(self, request, *args, **kwargs):
        serializer = CreditPackOrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = self.acting_customer(data.get("customer"))
        order = credit_pack_order_place(customer=customer, pack=data["pack"], actor=Actor.of_user(request.user))
        return Response(CreditPackOrderSerializer(order).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Cancel a pending credit pack order", request=None, parameters=[IDEMPOTENCY_KEY_HEADER],
                   description="409 `illegal_transition` once a renewal has invoiced it.",
                   responses={200: CreditPackOrderSerializer, **error_responses(*DETAIL_WRITE_ERRORS)})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        order = credit_pack_order_cancel(order=self.get_object(), actor=Actor.of_user(request.user))
        return Response(CreditPackOrderSerializer(order).data)
