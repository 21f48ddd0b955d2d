"""Credits: the balance, the append-only ledger, grants (staff create) and debits (402 when short)."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.errors import DETAIL_ERRORS, READ_ERRORS, WRITE_ERRORS, error_responses
from core.api.exports import export_response, export_schema
from core.audit import Actor
from credits.api.filters import CreditGrantFilter, CreditLedgerFilter
from credits.api.serializers import (
    CreditBalanceSerializer,
    CreditDebitSerializer,
    CreditGrantCreateSerializer,
    CreditGrantSerializer,
    CreditLedgerEntrySerializer,
    CreditWriteSerializer,
    CustomerQuerySerializer,
    credit_debit_validated,
    credit_write_data,
)
from credits.selectors import (
    CREDIT_LEDGER_EXPORT,
    credit_account_totals,
    credit_balance_get,
    credit_grant_list,
    credit_ledger_list,
)
from credits.services import credit_debit, credit_grant
from subscriptions.api.base import IDEMPOTENCY_KEY_HEADER, ApiViewMixin
from subscriptions.api.permissions import SIGNED_IN_AND_ALLOWED, HasPlanFeature, StaffOnly
from subscriptions.models import Customer

API_ACCESS = HasPlanFeature("api_access")


def credit_debit_answer(*, user, customer: Customer, data: dict) -> tuple[dict, int]:
    """A validated debit (`credit_debit_validated`) taken for `user`: the body and status it answers, 201, or
    200 when its idempotency key was used before. Shared by the view and its lean path (credits/api/lean.py)."""
    write = credit_debit(customer=customer, amount=data["amount"], actor=Actor.of_user(user),
                         reason=data["reason"] or "API debit", idempotency_key=data["idempotency_key"])
    return credit_write_data(write), status.HTTP_200_OK if write.replayed else status.HTTP_201_CREATED


class CreditsViewSet(ApiViewMixin, viewsets.GenericViewSet):
    """`credits/balance/` and `credits/debit/`: the customer's credits as one account."""

    permission_classes = [*SIGNED_IN_AND_ALLOWED, API_ACCESS]
    # A debit is a new ledger entry; the admin offers none, so the model permission is the one to hold.
    required_permissions = {
        "balance": "credits.view_creditbalance",
        "debit": "credits.add_creditledgerentry",
    }
    serializer_class = CreditBalanceSerializer
    pagination_class = None
    filter_backends = []

    @extend_schema(
        summary="Credit balance", operation_id="credits_balance_retrieve",
        parameters=[CustomerQuerySerializer],
        responses={200: CreditBalanceSerializer, **error_responses(400, *DETAIL_ERRORS)},
    )
    @action(detail=False, methods=["get"])
    def balance(self, request):
        query = CustomerQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = self.acting_customer(query.validated_data.get("customer"))
        totals = credit_account_totals(customer=customer)
        return Response(CreditBalanceSerializer({**vars(totals), "customer": customer.pk,
                                                 "balance": credit_balance_get(customer=customer)}).data)

    @extend_schema(
        summary="Take credits (402 with the balance when there are not enough)",
        operation_id="credits_debit_create", request=CreditDebitSerializer, parameters=[IDEMPOTENCY_KEY_HEADER],
        examples=[OpenApiExample("Debit", value={"amount": 25, "reason": "report export"}, request_only=True)],
        responses={201: CreditWriteSerializer, 200: CreditWriteSerializer,
                   **error_responses(402, 404, *WRITE_ERRORS)},
    )
    @action(detail=False, methods=["post"], serializer_class=CreditDebitSerializer)
    def debit(self, request):
        data = credit_debit_validated(request.data)
        customer = self._debited_customer(data.get("customer"))
        body, status_code = credit_debit_answer(user=request.user, customer=customer, data=data)
        return Response(body, status=status_code)

    def _debited_customer(self, customer_id: int | None) -> Customer:
        """Whose credits a debit takes. A customer's own: its id comes from the client record that every
        request already trusts for scoping, and a debit needs nothing but the id, so the Customer row is
        not read (one round trip less on the hot path). Staff name the customer, which is looked up."""
        client = self.api_client
        if client.is_staff or client.customer_id is None or customer_id not in (None, client.customer_id):
            return self.acting_customer(customer_id)
        return Customer(pk=client.customer_id)


@extend_schema_view(
    list=extend_schema(summary="Credit ledger (append-only)",
                       responses={200: CreditLedgerEntrySerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="One ledger entry",
                           responses={200: CreditLedgerEntrySerializer, **error_responses(*DETAIL_ERRORS)}),
)
class CreditLedgerViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = CreditLedgerEntrySerializer
    permission_classes = [*SIGNED_IN_AND_ALLOWED, API_ACCESS]
    required_permissions = {"list": "credits.view_creditledgerentry", "retrieve": "credits.view_creditledgerentry",
                            "export": "credits.view_creditledgerentry"}
    filterset_class = CreditLedgerFilter
    ordering_fields = ["id", "created_at", "amount"]
    ordering = ["-id"]

    def get_queryset(self):
        return self.scoped(credit_ledger_list())

    @export_schema("Export the credit ledger as CSV")
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        return export_response(queryset=self.filter_queryset(self.get_queryset()), spec=CREDIT_LEDGER_EXPORT)


@extend_schema_view(
    list=extend_schema(summary="Credit grants",
                       responses={200: CreditGrantSerializer(many=True), **error_responses(*READ_ERRORS)}),
    retrieve=extend_schema(summary="One credit grant",
                           responses={200: CreditGrantSerializer, **error_responses(*DETAIL_ERRORS)}),
    create=extend_schema(summary="Grant credits (staff)", request=CreditGrantCreateSerializer,
                         parameters=[IDEMPOTENCY_KEY_HEADER],
                         examples=[OpenApiExample("Promotion", request_only=True, value={
                             "customer": 42, "amount": 500, "source": "promotion", "priority": 0,
                             "expires_at": "2027-01-01T00:00:00Z", "reason": "launch promotion"})],
                         responses={201: CreditWriteSerializer, **error_responses(404, *WRITE_ERRORS)}),
)
class CreditGrantViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                         viewsets.GenericViewSet):
    serializer_class = CreditGrantSerializer
    permission_classes = [*SIGNED_IN_AND_ALLOWED, API_ACCESS]
    required_permissions = {
        "list": "credits.view_creditgrant",
        "retrieve": "credits.view_creditgrant",
        "create": StaffOnly("credits.grant_credits"),
    }
    filterset_class = CreditGrantFilter
    ordering_fields = ["id", "created_at", "expires_at", "amount", "priority"]
    ordering = ["-id"]

    def get_queryset(self):
        return self.scoped(credit_grant_list())

    def create(self, request, *args, **kwargs):
        serializer = CreditGrantCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        customer = self.acting_customer(data.pop("customer"))
        write = credit_grant(customer=customer, actor=Actor.of_user(request.user), **data)
        return Response(CreditWriteSerializer(write).data, status=status.HTTP_201_CREATED)
