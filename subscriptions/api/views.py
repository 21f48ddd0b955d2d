"""Plans (read for everyone signed in, write for staff) and customers (me, or all for staff).

Subscriptions' endpoints live in payments.api because starting and changing a plan are payments flows.
"""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from core.api.errors import DETAIL_ERRORS, DETAIL_WRITE_ERRORS, READ_ERRORS, WRITE_ERRORS, error_responses
from core.audit import Actor
from subscriptions.api.base import IDEMPOTENCY_KEY_HEADER, ApiViewMixin
from subscriptions.api.client import api_client_forget
from subscriptions.api.filters import CustomerFilter, PlanFilter
from subscriptions.api.permissions import SIGNED_IN_AND_ALLOWED, StaffOnly
from subscriptions.api.serializers import (
    CustomerCreateSerializer,
    CustomerSelfSerializer,
    CustomerSerializer,
    PlanSerializer,
)
from subscriptions.models import Customer
from subscriptions.selectors import plan_list
from subscriptions.services import customer_create, customer_update, plan_create, plan_update

_PLAN_EXAMPLE = OpenApiExample("Pro plan", value={
    "code": "pro", "name": "Pro", "amount": 4900, "currency": "USD", "interval": "month",
    "rate_limit_per_minute": 50, "rate_limit_per_hour": 2000, "api_calls_per_day": 20000,
    "features": ["api_access"], "credits_per_period": 1000}, request_only=True)


@extend_schema_view(
    list=extend_schema(summary="List plans",
                       responses={200: PlanSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="Get a plan", responses={200: PlanSerializer, **error_responses(*DETAIL_ERRORS)}),
    create=extend_schema(summary="Create a plan (staff)", parameters=[IDEMPOTENCY_KEY_HEADER],
                         examples=[_PLAN_EXAMPLE], responses={201: PlanSerializer, **error_responses(*WRITE_ERRORS)}),
    update=extend_schema(summary="Replace a plan (staff)",
                         responses={200: PlanSerializer, **error_responses(*DETAIL_WRITE_ERRORS)}),
    partial_update=extend_schema(summary="Change a plan (staff); priced fields are fixed once it has subscribers",
                                 responses={200: PlanSerializer, **error_responses(*DETAIL_WRITE_ERRORS)}),
)
class PlanViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                  mixins.UpdateModelMixin, viewsets.GenericViewSet):
    serializer_class = PlanSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    required_permissions = {
        "list": "subscriptions.view_plan",
        "retrieve": "subscriptions.view_plan",
        "create": StaffOnly("subscriptions.add_plan"),
        "update": StaffOnly("subscriptions.change_plan"),
        "partial_update": StaffOnly("subscriptions.change_plan"),
    }
    filterset_class = PlanFilter
    ordering_fields = ["id", "amount", "sort_order", "code", "created_at"]
    ordering = ["id"]

    def get_queryset(self):
        # The rails' price ids (payments.ProviderPlanPrice) by their relation name: one query per page.
        return plan_list(include_inactive=True).prefetch_related("provider_prices")

    def perform_create(self, serializer):
        serializer.instance = plan_create(actor=Actor.of_user(self.request.user), **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = plan_update(plan=serializer.instance, actor=Actor.of_user(self.request.user),
                                          **serializer.validated_data)


@extend_schema_view(
    list=extend_schema(summary="List customers (yourself, or all for staff)",
                       responses={200: CustomerSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="Get a customer",
                           responses={200: CustomerSerializer, **error_responses(*DETAIL_ERRORS)}),
    create=extend_schema(summary="Create a customer (staff)", parameters=[IDEMPOTENCY_KEY_HEADER],
                         request=CustomerCreateSerializer,
                         examples=[OpenApiExample("Customer", request_only=True, value={
                             "name": "Acme Ltd", "email": "billing@acme.test", "currency": "EUR",
                             "external_id": "crm-1042", "user": 7})],
                         responses={201: CustomerSerializer, **error_responses(*WRITE_ERRORS)}),
    update=extend_schema(summary="Replace a customer's details",
                         responses={200: CustomerSerializer, **error_responses(*DETAIL_WRITE_ERRORS)}),
    partial_update=extend_schema(summary="Change a customer's details",
                                 examples=[OpenApiExample("Rename", value={"name": "Acme Group"},
                                                          request_only=True)],
                                 responses={200: CustomerSerializer, **error_responses(*DETAIL_WRITE_ERRORS)}),
)
class CustomerViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                      mixins.UpdateModelMixin, viewsets.GenericViewSet):
    serializer_class = CustomerSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    required_permissions = {
        "list": "subscriptions.view_customer",
        "retrieve": "subscriptions.view_customer",
        "me": "subscriptions.view_customer",
        "create": StaffOnly("subscriptions.add_customer"),
        "update": "subscriptions.change_customer",
        "partial_update": "subscriptions.change_customer",
    }
    filterset_class = CustomerFilter
    ordering_fields = ["id", "name", "email", "created_at"]
    ordering = ["-id"]

    def get_serializer_class(self):
        if self.action == "create":
            return CustomerCreateSerializer
        if self.action in ("update", "partial_update") and not self.api_client.is_staff:
            return CustomerSelfSerializer
        return CustomerSerializer

    def get_queryset(self):
        # The customer's provider accounts (payments.ProviderAccount) by their relation name: one query per page.
        return self.scoped(Customer.objects.prefetch_related("provider_accounts"), lookup="pk")

    def perform_create(self, serializer):
        serializer.instance = customer_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = customer_update(customer=serializer.instance, actor=Actor.of_user(self.request.user),
                                              **serializer.validated_data)
        # The cached client carries the preferred language: the next request speaks the new one.
        api_client_forget(user_id=serializer.instance.user_id)

    @extend_schema(summary="The signed-in customer", responses={200: CustomerSerializer,
                                                                 **error_responses(*DETAIL_ERRORS)})
    @action(detail=False, methods=["get"])
    def me(self, request):
        if self.api_client.is_staff:
            raise NotFound(_("Staff users have no customer account."))
        return Response(CustomerSerializer(self.acting_customer()).data)
