"""Staff register outbound webhook endpoints and read the delivery log through the API (the admin's pages
and permissions, docs/webhooks-outbound.md). Here, the lowest app holding the API machinery, because the
outbound_webhooks app sits below every app that emits events and so below `subscriptions.api`."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from core.api.errors import DETAIL_ERRORS, DETAIL_WRITE_ERRORS, READ_ERRORS, WRITE_ERRORS, error_responses
from outbound_webhooks.selectors import webhook_delivery_list, webhook_endpoint_list
from outbound_webhooks.services import webhook_delivery_redeliver, webhook_endpoint_create, webhook_endpoint_update
from subscriptions.api.base import IDEMPOTENCY_KEY_HEADER, ApiViewMixin
from subscriptions.api.client import api_client_for
from subscriptions.api.permissions import SIGNED_IN_AND_ALLOWED, ActionPermissions, StaffOnly
from subscriptions.api.webhook_serializers import (
    WebhookDeliveryFilter,
    WebhookDeliverySerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWriteSerializer,
)


class StaffCallersOnly(BasePermission):
    """The merchant's integration settings are no customer's business: refused before any lookup, so a
    customer learns nothing of which endpoints or deliveries exist."""

    message = ActionPermissions.staff_only_message

    def has_permission(self, request, view) -> bool:
        return api_client_for(user=request.user).is_staff


STAFF_ONLY = [*SIGNED_IN_AND_ALLOWED, StaffCallersOnly]


@extend_schema_view(
    list=extend_schema(summary="Outbound webhook endpoints (staff)",
                       responses={200: WebhookEndpointSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="One outbound webhook endpoint (staff)",
                           responses={200: WebhookEndpointSerializer, **error_responses(*DETAIL_ERRORS)}),
    create=extend_schema(
        summary="Register an outbound webhook endpoint (staff)", request=WebhookEndpointWriteSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        examples=[OpenApiExample("CRM", request_only=True, value={
            "url": "https://crm.example.com/billing-hooks", "event_types": ["invoice.paid", "payment.failed"],
            "description": "CRM sync"})],
        responses={201: WebhookEndpointCreatedSerializer, **error_responses(*WRITE_ERRORS)}),
    partial_update=extend_schema(
        summary="Change an outbound webhook endpoint (staff; enabling clears its failure record)",
        request=WebhookEndpointWriteSerializer(partial=True),
        responses={200: WebhookEndpointSerializer, **error_responses(*DETAIL_WRITE_ERRORS)}),
)
class WebhookEndpointViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = WebhookEndpointSerializer
    permission_classes = STAFF_ONLY
    required_permissions = {
        "list": StaffOnly("outbound_webhooks.view_webhookendpoint"),
        "retrieve": StaffOnly("outbound_webhooks.view_webhookendpoint"),
        "create": StaffOnly("outbound_webhooks.add_webhookendpoint"),
        "partial_update": StaffOnly("outbound_webhooks.change_webhookendpoint"),
    }
    filterset_fields = ["enabled"]
    ordering_fields = ["id", "created_at"]
    ordering = ["id"]

    def get_queryset(self):
        return webhook_endpoint_list()

    def create(self, request):
        serializer = WebhookEndpointWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(**serializer.validated_data)
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        serializer = WebhookEndpointWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_update(endpoint=endpoint, **serializer.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)


@extend_schema_view(
    list=extend_schema(summary="Outbound webhook delivery log (staff)",
                       responses={200: WebhookDeliverySerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="One delivery with every attempt (staff)",
                           responses={200: WebhookDeliverySerializer, **error_responses(*DETAIL_ERRORS)}),
)
class WebhookDeliveryViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = WebhookDeliverySerializer
    permission_classes = STAFF_ONLY
    required_permissions = {
        "list": StaffOnly("outbound_webhooks.view_webhookdelivery"),
        "retrieve": StaffOnly("outbound_webhooks.view_webhookdelivery"),
        "redeliver": StaffOnly("outbound_webhooks.redeliver_webhookdelivery"),
    }
    filterset_class = WebhookDeliveryFilter
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]

    def get_queryset(self):
        return webhook_delivery_list()

    @extend_schema(summary="Send a delivery again (staff): pending with a fresh retry window", request=None,
                   parameters=[IDEMPOTENCY_KEY_HEADER],
                   responses={200: WebhookDeliverySerializer, **error_responses(*DETAIL_WRITE_ERRORS)})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        delivery = webhook_delivery_redeliver(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(self.get_queryset().get(pk=delivery.pk)).data,
                        status=status.HTTP_200_OK)
