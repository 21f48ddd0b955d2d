"""Usage: batch ingestion (exactly once per idempotency key), the event list, per-period summaries,
meters, the entitlements of the customer's current plan, usage thresholds (staff write, customers read
their own and their plan's) and the alerts they fired."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.api.errors import DETAIL_ERRORS, DETAIL_WRITE_ERRORS, READ_ERRORS, WRITE_ERRORS, error_responses
from core.api.exports import export_response, export_schema
from core.audit import Actor
from credits.selectors import credit_balance_get
from subscriptions.api.base import IDEMPOTENCY_KEY_HEADER, ApiViewMixin
from subscriptions.api.limits import plan_batch_check
from subscriptions.api.permissions import SIGNED_IN_AND_ALLOWED, HasPlanFeature, StaffOnly
from subscriptions.selectors import subscription_live_for_customer
from usage.api.filters import MeterFilter, UsageAlertFilter, UsageEventFilter, UsageThresholdFilter
from usage.api.serializers import (
    CustomerQuerySerializer,
    EntitlementsSerializer,
    MeterSerializer,
    UsageAlertSerializer,
    UsageBatchInSerializer,
    UsageBatchResultSerializer,
    UsageEventInSerializer,
    UsageEventSerializer,
    UsageSummaryQuerySerializer,
    UsageSummarySerializer,
    UsageThresholdSerializer,
    UsageThresholdWriteSerializer,
    usage_batch_parse,
)
from usage.selectors import (
    USAGE_EVENT_EXPORT,
    meter_list,
    meter_prices_for_plan,
    usage_alert_list,
    usage_event_list,
    usage_summary,
    usage_threshold_list,
    usage_thresholds_visible_to,
    usage_totals,
)
from usage.services import usage_events_record_batch
from usage.threshold_services import (
    ThresholdSpec,
    usage_threshold_create,
    usage_threshold_delete,
    usage_threshold_update,
)

API_ACCESS = HasPlanFeature("api_access")

_BATCH_EXAMPLE = OpenApiExample("A batch", request_only=True, value={"events": [
    {"meter": "api-calls", "idempotency_key": "evt-0001", "quantity": "1", "occurred_at": "2026-11-22T10:00:00Z"},
    {"meter": "storage-gb", "idempotency_key": "evt-0002", "quantity": "2.5", "properties": {"bucket": "logs"}},
]})
_ONE_EXAMPLE = OpenApiExample("One event", request_only=True,
                              value={"meter": "api-calls", "idempotency_key": "evt-0003", "quantity": 3})
_RESULT_EXAMPLE = OpenApiExample("Outcome", response_only=True, status_codes=["201"], value={
    "created": 1, "duplicates": 1, "credits_debited": 0, "results": [
        {"idempotency_key": "evt-0001", "status": "duplicate", "id": 981},
        {"idempotency_key": "evt-0002", "status": "created", "id": 1204}]})


@extend_schema_view(
    list=extend_schema(summary="List usage events",
                       responses={200: UsageEventSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="Get a usage event",
                           responses={200: UsageEventSerializer, **error_responses(*DETAIL_ERRORS)}),
)
class UsageEventViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = UsageEventSerializer
    permission_classes = [*SIGNED_IN_AND_ALLOWED, API_ACCESS]
    required_permissions = {
        "list": "usage.view_usageevent",
        "retrieve": "usage.view_usageevent",
        "export": "usage.view_usageevent",
        "create": "usage.add_usageevent",
    }
    filterset_class = UsageEventFilter
    ordering_fields = ["id", "occurred_at", "received_at", "quantity"]
    ordering = ["-id"]

    def get_queryset(self):
        return self.scoped(usage_event_list())

    @export_schema("Export usage events as CSV")
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        return export_response(queryset=self.filter_queryset(self.get_queryset()), spec=USAGE_EVENT_EXPORT)

    @extend_schema(
        summary="Record usage: one event or a batch of up to 1,000",
        description="Each event is stored once per (customer, idempotency_key): a key seen before, or repeated "
                    "in the batch, is reported as `duplicate` and stored once. Events of meters with a credit "
                    "price debit the customer's credits in the same transaction; without enough credits the "
                    "answer is 402 and nothing is stored. Invalid events reject the whole batch with 400 and "
                    "errors per event index under `fields.events` (a single event is index 0). Answers 201 when "
                    "something was stored, 200 when every event was a duplicate.",
        request=PolymorphicProxySerializer(component_name="UsageEventsIn", resource_type_field_name=None,
                                           serializers=[UsageEventInSerializer, UsageBatchInSerializer]),
        parameters=[IDEMPOTENCY_KEY_HEADER], examples=[_BATCH_EXAMPLE, _ONE_EXAMPLE, _RESULT_EXAMPLE],
        responses={201: UsageBatchResultSerializer,
                   200: OpenApiResponse(UsageBatchResultSerializer, description="Every event was a duplicate."),
                   **error_responses(402, 404, *WRITE_ERRORS)},
    )
    def create(self, request, *args, **kwargs):
        customer_id, events = usage_batch_parse(request.data)
        plan_batch_check(client=self.api_client, size=len(events))
        customer = self.acting_customer(customer_id)
        result = usage_events_record_batch(customer=customer, events=events, actor=Actor.of_user(request.user))
        # Plain dicts, not a serializer: 1,000 outcomes go out on every full batch.
        body = {
            "created": result.created, "duplicates": result.duplicates, "credits_debited": result.credits_debited,
            "results": [{"idempotency_key": o.idempotency_key, "status": o.status, "id": o.id}
                        for o in result.results],
        }
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class UsageSummaryViewSet(ApiViewMixin, viewsets.GenericViewSet):
    serializer_class = UsageSummarySerializer
    permission_classes = [*SIGNED_IN_AND_ALLOWED, API_ACCESS]
    required_permissions = {"list": "usage.view_usageevent"}
    pagination_class = None
    filter_backends = []

    @extend_schema(summary="Usage per meter over a period, aggregated as each meter defines",
                   parameters=[UsageSummaryQuerySerializer],
                   responses={200: UsageSummarySerializer, **error_responses(400, *DETAIL_ERRORS)})
    def list(self, request):
        query = UsageSummaryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = self.acting_customer(query.validated_data.get("customer"))
        start, end = query.validated_data.get("start"), query.validated_data.get("end")
        if start is None:
            subscription = subscription_live_for_customer(customer=customer)
            if subscription is None:
                raise ValidationError({"start": [_("No current subscription period: give start and end.")]})
            start, end = subscription.current_period_start, subscription.current_period_end
        summary = {"customer": customer.pk, "period_start": start, "period_end": end,
                   "meters": usage_summary(customer_id=customer.pk, start=start, end=end)}
        if group_by := query.validated_data.get("group_by"):
            summary["groups"] = usage_totals(start=start, end=end, group_by=group_by, customer_id=customer.pk)
        return Response(UsageSummarySerializer(summary).data)


@extend_schema_view(
    list=extend_schema(summary="List meters", responses={200: MeterSerializer(many=True),
                                                         **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="Get a meter", responses={200: MeterSerializer, **error_responses(*DETAIL_ERRORS)}),
)
class MeterViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = MeterSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    required_permissions = {"list": "usage.view_meter", "retrieve": "usage.view_meter"}
    ordering_fields = ["id", "code"]
    ordering = ["id"]
    filterset_class = MeterFilter

    def get_queryset(self):
        return meter_list(include_inactive=True)


class EntitlementViewSet(ApiViewMixin, viewsets.GenericViewSet):
    """Open to any signed-in customer, with or without api_access, so it can see what its plan lacks."""

    serializer_class = EntitlementsSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    required_permissions = {"list": "subscriptions.view_subscription"}
    pagination_class = None
    filter_backends = []

    @extend_schema(summary="Features and limits of the customer's current plan", parameters=[CustomerQuerySerializer],
                   responses={200: EntitlementsSerializer, **error_responses(400, *DETAIL_ERRORS)})
    def list(self, request):
        query = CustomerQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = self.acting_customer(query.validated_data.get("customer"))
        subscription = subscription_live_for_customer(customer=customer)
        plan = subscription.plan if subscription else None
        data = {
            "customer": customer.pk,
            "subscription": subscription.pk if subscription else None,
            "subscription_status": subscription.status if subscription else None,
            "plan": plan,
            "features": list(plan.features or []) if plan else [],
            "limits": {"rate_limit_per_minute": plan.rate_limit_per_minute if plan else 0,
                       "rate_limit_per_hour": plan.rate_limit_per_hour if plan else 0,
                       "api_calls_per_day": plan.api_calls_per_day if plan else 0},
            "credits_per_period": plan.credits_per_period if plan else 0,
            "credit_balance": credit_balance_get(customer=customer),
            "meter_prices": list(meter_prices_for_plan(plan_id=plan.pk)) if plan else [],
        }
        return Response(EntitlementsSerializer(data).data)


@extend_schema_view(
    list=extend_schema(summary="Usage thresholds (staff: all; a customer: its own and its plan's)",
                       responses={200: UsageThresholdSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="One usage threshold",
                           responses={200: UsageThresholdSerializer, **error_responses(*DETAIL_ERRORS)}),
    create=extend_schema(
        summary="Add a usage threshold or spend cap (staff)", request=UsageThresholdWriteSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        examples=[OpenApiExample("80% of the included calls", request_only=True, value={
                      "plan": 3, "meter": "api-calls", "kind": "included_percent", "value": "80"}),
                  OpenApiExample("Hard cap for one customer", request_only=True, value={
                      "customer": 42, "meter": "api-calls", "kind": "units", "value": "100000",
                      "hard_cap": True, "name": "contract limit"}),
                  OpenApiExample("Credits running low", request_only=True, value={
                      "plan": 3, "kind": "credit_balance", "value": "500"})],
        responses={201: UsageThresholdSerializer, **error_responses(*WRITE_ERRORS)}),
    partial_update=extend_schema(
        summary="Change a usage threshold (staff; alerts already written stay)",
        request=UsageThresholdWriteSerializer(partial=True),
        responses={200: UsageThresholdSerializer, **error_responses(*DETAIL_WRITE_ERRORS)}),
    destroy=extend_schema(summary="Delete a usage threshold and its alerts (staff)",
                          responses={204: None, **error_responses(*DETAIL_WRITE_ERRORS)}),
)
class UsageThresholdViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = UsageThresholdSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    required_permissions = {
        "list": "usage.view_usagethreshold",
        "retrieve": "usage.view_usagethreshold",
        "create": StaffOnly("usage.add_usagethreshold"),
        "partial_update": StaffOnly("usage.change_usagethreshold"),
        "destroy": StaffOnly("usage.delete_usagethreshold"),
    }
    filterset_class = UsageThresholdFilter
    ordering_fields = ["id", "created_at", "value"]
    ordering = ["id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False) or self.api_client.is_staff:
            return self.scoped(usage_threshold_list())
        if self.api_client.customer_id is None:
            return usage_threshold_list().none()
        return usage_thresholds_visible_to(customer_id=self.api_client.customer_id)

    def create(self, request):
        serializer = UsageThresholdWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        threshold = usage_threshold_create(spec=ThresholdSpec(**serializer.validated_data))
        return Response(UsageThresholdSerializer(threshold).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        threshold = self.get_object()
        serializer = UsageThresholdWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        threshold = usage_threshold_update(threshold=threshold, changes=serializer.validated_data)
        return Response(UsageThresholdSerializer(threshold).data)

    def destroy(self, request, pk=None):
        usage_threshold_delete(threshold=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="Usage alerts: thresholds crossed, once per period each (a customer: its own)",
                       responses={200: UsageAlertSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="One usage alert",
                           responses={200: UsageAlertSerializer, **error_responses(*DETAIL_ERRORS)}),
)
class UsageAlertViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = UsageAlertSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    required_permissions = {"list": "usage.view_usagealert", "retrieve": "usage.view_usagealert"}
    filterset_class = UsageAlertFilter
    ordering_fields = ["id", "created_at", "period_start"]
    ordering = ["-id"]

    def get_queryset(self):
        return self.scoped(usage_alert_list())
