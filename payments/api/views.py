"""Subscriptions (their start and plan changes are payments flows, so their endpoints live here),
invoices (staff create one-off invoices, finalize, void and mark paid) and payments (staff record manual
payments and refund)."""

from django.http import HttpResponse
from django.utils import translation
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.errors import DETAIL_ERRORS, DETAIL_WRITE_ERRORS, READ_ERRORS, WRITE_ERRORS, error_responses
from core.api.exports import export_response, export_schema
from core.audit import Actor
from payments.api.filters import InvoiceFilter, PaymentFilter
from payments.api.serializers import (
    InvoiceCreateSerializer,
    InvoiceSerializer,
    ManualPaymentCreateSerializer,
    PaymentDetailSerializer,
    PaymentSerializer,
    PlanChangeSerializer,
    RefundCreateSerializer,
    RefundSerializer,
    SubscriptionStartSerializer,
)
from payments.invoice_html import invoice_language, invoice_render_html
from payments.providers.manual.services import payment_record_manual
from payments.selectors import (
    INVOICE_EXPORT,
    PAYMENT_EXPORT,
    REFUND_EXPORT,
    invoice_list,
    payment_detail_list,
    payment_list,
    refund_list,
)
from payments.services import (
    OneOffLine,
    invoice_finalize,
    invoice_mark_paid,
    invoice_one_off_create,
    invoice_void,
    payment_refund,
    subscription_start,
)
from payments.services.rail_subscriptions import (
    subscription_cancel_requested,
    subscription_change_plan_requested,
    subscription_pause_requested,
    subscription_resume_requested,
)
from subscriptions.api.base import IDEMPOTENCY_KEY_HEADER, ApiViewMixin
from subscriptions.api.client import api_client_forget
from subscriptions.api.filters import SubscriptionFilter
from subscriptions.api.permissions import SIGNED_IN_AND_ALLOWED, HasPlanFeature, StaffOnly
from subscriptions.api.serializers import (
    ReasonSerializer,
    SubscriptionCancelSerializer,
    SubscriptionChangePlanSerializer,
    SubscriptionCreateSerializer,
    SubscriptionSerializer,
)
from subscriptions.models import Customer
from subscriptions.selectors import subscription_list

API_ACCESS = HasPlanFeature("api_access")


def _named_row(queryset, *, pk: int | None, field: str):
    """The row a staff body names by id, or a 400 naming the field (staff-only writes: no existence oracle)."""
    if pk is None:
        return None
    row = queryset.filter(pk=pk).first()
    if row is None:
        raise serializers.ValidationError({field: [_("No %(field)s has the id %(id)s.") % {"field": field, "id": pk}]})
    return row


_REASON_EXAMPLE = OpenApiExample("With a reason", value={"reason": "requested by the customer"}, request_only=True)


def _action_schema(summary: str, request, response, *errors: int, **kwargs):
    kwargs.setdefault("examples", [_REASON_EXAMPLE])
    return extend_schema(summary=summary, request=request, parameters=[IDEMPOTENCY_KEY_HEADER],
                         responses={200: response, **error_responses(*(errors or DETAIL_WRITE_ERRORS))}, **kwargs)


@extend_schema_view(
    list=extend_schema(summary="List subscriptions",
                       responses={200: SubscriptionSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="Get a subscription",
                           responses={200: SubscriptionSerializer, **error_responses(*DETAIL_ERRORS)}),
    create=extend_schema(
        summary="Subscribe to a plan", request=SubscriptionCreateSerializer, parameters=[IDEMPOTENCY_KEY_HEADER],
        description="Free plans start active, plans with a trial start trialing, paid plans start incomplete "
                    "with their first invoice open until it is paid.",
        examples=[OpenApiExample("Subscribe", value={"plan": 2}, request_only=True)],
        responses={201: SubscriptionStartSerializer, **error_responses(404, *WRITE_ERRORS)}),
)
class SubscriptionViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                          viewsets.GenericViewSet):
    serializer_class = SubscriptionSerializer
    permission_classes = SIGNED_IN_AND_ALLOWED
    # The admin cancels with cancel_subscription and resumes with resume_subscription; the other moves change
    # the subscription itself.
    required_permissions = {
        "list": "subscriptions.view_subscription",
        "retrieve": "subscriptions.view_subscription",
        "create": "subscriptions.add_subscription",
        "cancel": "subscriptions.cancel_subscription",
        "pause": "subscriptions.change_subscription",
        "resume": "subscriptions.resume_subscription",
        "change_plan": "subscriptions.change_subscription",
    }
    filterset_class = SubscriptionFilter
    ordering_fields = ["id", "created_at", "current_period_end", "status"]
    ordering = ["-id"]

    def get_queryset(self):
        return self.scoped(subscription_list())

    def _changed(self, subscription) -> None:
        # Rate limits and features follow the plan: forget the cached ones of the owner at once.
        api_client_forget(user_id=subscription.customer.user_id)

    def create(self, request, *args, **kwargs):
        serializer = SubscriptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = self.acting_customer(data.get("customer"))
        subscription, invoice = subscription_start(customer=customer, plan=data["plan"],
                                                   actor=Actor.of_user(request.user), with_trial=data["with_trial"])
        self._changed(subscription)
        return Response(SubscriptionStartSerializer({"subscription": subscription, "invoice": invoice}).data,
                        status=status.HTTP_201_CREATED)

    @_action_schema("Cancel now or at the period end", SubscriptionCancelSerializer, SubscriptionSerializer,
                    examples=[OpenApiExample("At period end", value={"at_period_end": True}, request_only=True)])
    @action(detail=True, methods=["post"], serializer_class=SubscriptionCancelSerializer)
    def cancel(self, request, pk=None):
        subscription = self.get_object()
        serializer = SubscriptionCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = subscription_cancel_requested(subscription=subscription, actor=Actor.of_user(request.user),
                                                     **serializer.validated_data)
        self._changed(subscription)
        return Response(SubscriptionSerializer(subscription).data)

    @_action_schema("Pause", ReasonSerializer, SubscriptionSerializer)
    @action(detail=True, methods=["post"], serializer_class=ReasonSerializer)
    def pause(self, request, pk=None):
        return self._status_action(request, subscription_pause_requested)

    @_action_schema("Resume a paused subscription, or withdraw a scheduled cancellation", ReasonSerializer,
                    SubscriptionSerializer)
    @action(detail=True, methods=["post"], serializer_class=ReasonSerializer)
    def resume(self, request, pk=None):
        # The billed resume: after the period ended it restarts the cycle instead of billing the paused months
        # (a subscription a merchant of record bills is resumed there).
        return self._status_action(request, subscription_resume_requested)

    def _status_action(self, request, service):
        """Pause and resume: a reason in, the service applied to this subscription, the subscription out."""
        subscription = self.get_object()
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = service(subscription=subscription, actor=Actor.of_user(request.user),
                               reason=serializer.validated_data["reason"])
        self._changed(subscription)
        return Response(SubscriptionSerializer(subscription).data)

    @_action_schema("Change plan: upgrades now with proration, downgrades at the period end",
                    SubscriptionChangePlanSerializer, PlanChangeSerializer,
                    examples=[OpenApiExample("Upgrade", value={"plan": 3}, request_only=True)])
    @action(detail=True, methods=["post"], url_path="change-plan", serializer_class=SubscriptionChangePlanSerializer)
    def change_plan(self, request, pk=None):
        subscription = self.get_object()
        serializer = SubscriptionChangePlanSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        change = subscription_change_plan_requested(
            subscription=subscription, new_plan=serializer.validated_data["plan"], actor=Actor.of_user(request.user),
            reason=serializer.validated_data["reason"])
        self._changed(change.subscription)
        return Response(PlanChangeSerializer(change).data)


@extend_schema_view(
    list=extend_schema(summary="List invoices",
                       responses={200: InvoiceSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="Get an invoice with its lines",
                           responses={200: InvoiceSerializer, **error_responses(*DETAIL_ERRORS)}),
    create=extend_schema(
        summary="Create a one-off invoice (staff)", request=InvoiceCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        description="A draft manual invoice with hand-written lines and a note to the customer; each line's "
                    "amount is quantity x unit_amount rounded once, half-up. Issue it with `finalize`.",
        examples=[OpenApiExample("Setup fee", request_only=True, value={
            "customer": 42, "currency": "USD", "note": "Thank you for choosing us.",
            "lines": [{"description": "Setup fee", "quantity": 1, "unit_amount": 25000},
                      {"description": "Consulting (hours)", "quantity": "2.5", "unit_amount": 12000}]})],
        responses={201: InvoiceSerializer, **error_responses(*WRITE_ERRORS)}),
)
class InvoiceViewSet(ApiViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = InvoiceSerializer
    permission_classes = [*SIGNED_IN_AND_ALLOWED, API_ACCESS]
    required_permissions = {
        "list": "payments.view_invoice",
        "retrieve": "payments.view_invoice",
        "html": "payments.view_invoice",
        "create": StaffOnly("payments.add_invoice"),
        "finalize": StaffOnly("payments.finalize_invoice"),
        "export": "payments.view_invoice",
        "void": StaffOnly("payments.void_invoice"),
        "mark_paid": StaffOnly("payments.mark_invoice_paid"),
    }
    filterset_class = InvoiceFilter
    ordering_fields = ["id", "created_at", "issued_at", "due_date", "total", "amount_due"]
    ordering = ["-id"]

    def get_queryset(self):
        if self.action in ("html", "export"):  # these read the lines themselves, or none
            return self.scoped(invoice_list())
        return self.scoped(invoice_list().prefetch_related("lines"))

    @export_schema("Export invoices as CSV")
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        return export_response(queryset=self.filter_queryset(self.get_queryset()), spec=INVOICE_EXPORT)

    @extend_schema(
        summary="The printable invoice (HTML)",
        description="The same page staff print from the back office, as `text/html`. Errors are JSON as everywhere.",
        responses={(200, "text/html"): OpenApiResponse(
            response=OpenApiTypes.STR, description="A complete HTML document.",
            examples=[OpenApiExample("Invoice page", response_only=True, media_type="text/html",
                                     value="<!doctype html><html>...Invoice INV-000042...</html>")]),
                   **error_responses(*DETAIL_ERRORS)},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def html(self, request, pk=None):
        invoice = self.get_object()
        # `?language=`, else an Accept-Language header, else the customer's preferred language.
        requested = request.query_params.get("language") or (
            translation.get_language() if "Accept-Language" in request.headers else None)
        language = invoice_language(invoice=invoice, requested=requested)
        return HttpResponse(invoice_render_html(invoice=invoice, language=language),
                            content_type="text/html; charset=utf-8")

    def create(self, request, *args, **kwargs):
        serializer = InvoiceCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = _named_row(Customer.objects.all(), pk=data["customer"], field="customer")
        invoice = invoice_one_off_create(
            customer=customer, currency=data["currency"], note=data["note"],
            lines=[OneOffLine(description=line["description"], quantity=line["quantity"],
                              unit_amount=line["unit_amount"]) for line in data["lines"]])
        return Response(InvoiceSerializer(self.get_queryset().get(pk=invoice.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Finalize (issue) a draft invoice (staff)", request=None,
                   parameters=[IDEMPOTENCY_KEY_HEADER],
                   description="Takes the next gapless number and sets the due date; collection starts as for "
                               "any invoice (card on file, Checkout, or a manual payment). 409 unless a draft.",
                   responses={200: InvoiceSerializer, **error_responses(*DETAIL_WRITE_ERRORS)})
    @action(detail=True, methods=["post"])
    def finalize(self, request, pk=None):
        invoice = invoice_finalize(invoice=self.get_object(), actor=Actor.of_user(request.user))
        return Response(InvoiceSerializer(self.get_queryset().get(pk=invoice.pk)).data)

    @_action_schema("Void an invoice (staff)", ReasonSerializer, InvoiceSerializer)
    @action(detail=True, methods=["post"], serializer_class=ReasonSerializer)
    def void(self, request, pk=None):
        invoice = self.get_object()
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice = invoice_void(invoice=invoice, actor=Actor.of_user(request.user),
                               reason=serializer.validated_data["reason"])
        return Response(InvoiceSerializer(self.get_queryset().get(pk=invoice.pk)).data)

    @_action_schema("Mark an invoice paid outside the system (staff)", ReasonSerializer, InvoiceSerializer)
    @action(detail=True, methods=["post"], url_path="mark-paid", serializer_class=ReasonSerializer)
    def mark_paid(self, request, pk=None):
        invoice = self.get_object()
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice = invoice_mark_paid(invoice=invoice, actor=Actor.of_user(request.user),
                                    reason=serializer.validated_data["reason"])
        return Response(InvoiceSerializer(self.get_queryset().get(pk=invoice.pk)).data)


@extend_schema_view(
    list=extend_schema(summary="List payments",
                       responses={200: PaymentSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="Get a payment, what it paid for and the credits it awarded",
                           responses={200: PaymentDetailSerializer, **error_responses(*DETAIL_ERRORS)}),
    create=extend_schema(
        summary="Record a manual payment (staff)", request=ManualPaymentCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        description="Cash, check or bank transfer received by hand, recorded as succeeded through the manual "
                    "rail. With `invoice`, it is applied to that open invoice, which is paid once fully covered.",
        examples=[OpenApiExample("A cheque for an invoice", request_only=True, value={
            "customer": 42, "amount": 25000, "currency": "USD", "method": "check", "reference": "cheque 1042",
            "description": "Setup fee", "invoice": 7})],
        responses={201: PaymentDetailSerializer, **error_responses(*WRITE_ERRORS)}),
)
class PaymentViewSet(ApiViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = PaymentSerializer
    permission_classes = [*SIGNED_IN_AND_ALLOWED, API_ACCESS]
    required_permissions = {
        "list": "payments.view_payment",
        "retrieve": "payments.view_payment",
        # The admin's "Record manual payment" permission: one permission, both doors.
        "create": StaffOnly("payments.record_manual_payment"),
        "export": "payments.view_payment",
        "export_refunds": "payments.view_refund",
        "refund": StaffOnly("payments.refund_payment"),
    }
    filterset_class = PaymentFilter
    ordering_fields = ["id", "created_at", "amount", "succeeded_at"]
    ordering = ["-id"]

    def get_queryset(self):
        return self.scoped(payment_detail_list() if self.action == "retrieve" else payment_list())

    def get_serializer_class(self):
        return PaymentDetailSerializer if self.action == "retrieve" else PaymentSerializer

    def create(self, request, *args, **kwargs):
        serializer = ManualPaymentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment = payment_record_manual(
            customer=_named_row(Customer.objects.all(), pk=data["customer"], field="customer"),
            invoice=_named_row(invoice_list(), pk=data["invoice"], field="invoice"),
            amount=data["amount"], currency=data["currency"], method=data["method"], reference=data["reference"],
            description=data["description"], actor=Actor.of_user(request.user),
            reason=f"{data['method']} recorded by staff through the API")
        return Response(PaymentDetailSerializer(payment_detail_list().get(pk=payment.pk)).data,
                        status=status.HTTP_201_CREATED)

    @export_schema("Export payments as CSV")
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        return export_response(queryset=self.filter_queryset(self.get_queryset()), spec=PAYMENT_EXPORT)

    @export_schema("Export the refunds of the payments the filters select, as CSV")
    @action(detail=False, methods=["get"], pagination_class=None, url_path="refunds/export")
    def export_refunds(self, request):
        payments = self.filter_queryset(self.get_queryset()).order_by().values("pk")
        return export_response(queryset=refund_list().filter(payment__in=payments).order_by("pk"),
                               spec=REFUND_EXPORT)

    @extend_schema(summary="Refund all or part of a payment (staff)", request=RefundCreateSerializer,
                   parameters=[IDEMPOTENCY_KEY_HEADER],
                   examples=[OpenApiExample("Partial refund", value={"amount": 500, "reason": "goodwill"},
                                            request_only=True)],
                   responses={201: RefundSerializer, **error_responses(*DETAIL_WRITE_ERRORS, 502, 503)})
    @action(detail=True, methods=["post"], serializer_class=RefundCreateSerializer)
    def refund(self, request, pk=None):
        payment = self.get_object()
        serializer = RefundCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key")
        refund = payment_refund(payment=payment, actor=Actor.of_user(request.user),
                                amount=serializer.validated_data["amount"], reason=serializer.validated_data["reason"],
                                idempotency_key=f"api:{request.user.pk}:{key}"[:255] if key else None)
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)
