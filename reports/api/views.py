"""The report endpoints under /api/v1/reports/: staff with `reports.view_reports` only (a customer is
answered 404, as for anything it may not know exists). Parameters are checked by the query serializers,
figures come from reports.selectors and payments.billing.forecast; the views only wire them."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from core.api.errors import error_responses
from payments.billing.forecast import billing_forecast, forecast_by_day
from reports.api import serializers as s
from reports.selectors import (
    report_churn,
    report_credits,
    report_mrr,
    report_payment_summary,
    report_receivables,
    report_revenue,
    report_subscriptions,
)
from subscriptions.api.base import ApiViewMixin
from subscriptions.api.client import api_client_for
from subscriptions.api.permissions import ActionPermissions
from usage.selectors import usage_totals

REPORT_PERMISSION = "reports.view_reports"
REPORT_ERRORS = error_responses(400, 401, 403, 404, 429)


class StaffElseNotFound(BasePermission):
    """Reports are the business's books: a customer's program is told they do not exist."""

    def has_permission(self, request, view) -> bool:
        if not api_client_for(user=request.user).is_staff:
            raise NotFound()
        return True


def _report(summary: str, query: type, answer: type, description: str = ""):
    return extend_schema(summary=summary, description=description, parameters=[query],
                         responses={200: answer, **REPORT_ERRORS})


class ReportViewSet(ApiViewMixin, viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, StaffElseNotFound, ActionPermissions]
    required_permissions = dict.fromkeys(
        ("payment_summary", "revenue", "mrr", "churn", "subscriptions", "receivables", "credits", "forecast",
         "usage"),
        REPORT_PERMISSION)
    pagination_class = None
    filter_backends = []

    def _query(self, serializer_class) -> dict:
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    @_report("Payments per method and status", s.ReportQuerySerializer, s.PaymentSummarySerializer,
             "Payments created in [from, to): count, amount and amount refunded per currency, method and status "
             "(every method and status, zeros included).")
    @action(detail=False, methods=["get"], url_path="payment-summary")
    def payment_summary(self, request):
        period = self._query(s.ReportQuerySerializer)["range"]
        return Response(s.PaymentSummarySerializer(
            {"range": period, "rows": report_payment_summary(period=period)}).data)

    @_report("Revenue: invoiced, collected, refunded, net, written off", s.RevenueQuerySerializer,
             s.RevenueSerializer)
    @action(detail=False, methods=["get"])
    def revenue(self, request):
        query = self._query(s.RevenueQuerySerializer)
        rows = report_revenue(period=query["range"], group_by=query["group_by"])
        return Response(s.RevenueSerializer({"range": query["range"], "group_by": query["group_by"],
                                             "rows": rows}).data)

    @_report("MRR at each month end and its movements", s.MrrQuerySerializer, s.MrrSerializer,
             "The movements of each window add up to mrr_end - mrr_start.")
    @action(detail=False, methods=["get"])
    def mrr(self, request):
        query = self._query(s.MrrQuerySerializer)
        return Response(s.MrrSerializer({"range": query["range"], "interval": query["interval"],
                                         "points": report_mrr(period=query["range"])}).data)

    @_report("Logo and revenue churn per month", s.ReportQuerySerializer, s.ChurnSerializer)
    @action(detail=False, methods=["get"])
    def churn(self, request):
        period = self._query(s.ReportQuerySerializer)["range"]
        return Response(s.ChurnSerializer({"range": period, "rows": report_churn(period=period)}).data)

    @_report("Subscriptions by status and by plan at `to`", s.ReportQuerySerializer, s.SubscriptionCountsSerializer)
    @action(detail=False, methods=["get"])
    def subscriptions(self, request):
        period = self._query(s.ReportQuerySerializer)["range"]
        counts = report_subscriptions(at=period.end, currency=period.currency)
        return Response(s.SubscriptionCountsSerializer(counts).data)

    @_report("Open invoices by age at `to`", s.ReportQuerySerializer, s.ReceivablesSerializer,
             "Open invoices issued before `to`, by whole days past due at `to`: current, 1-30, 31-60, 61-90, "
             "over 90.")
    @action(detail=False, methods=["get"])
    def receivables(self, request):
        period = self._query(s.ReportQuerySerializer)["range"]
        return Response(s.ReceivablesSerializer({"at": period.end, "rows": report_receivables(period=period)}).data)

    @_report("Credits granted, purchased, used and expired per month", s.ReportQuerySerializer,
             s.CreditsReportSerializer)
    @action(detail=False, methods=["get"])
    def credits(self, request):
        period = self._query(s.ReportQuerySerializer)["range"]
        months = report_credits(period_start=period.start, period_end=period.end, currency=period.currency)
        return Response(s.CreditsReportSerializer({"range": period, "months": months}).data)

    @_report("Invoices the billing run will issue in the next N days", s.ForecastQuerySerializer,
             s.ForecastSerializer, "Per day and currency, from the same renewal decision the billing run uses; "
             "nothing is written.")
    @action(detail=False, methods=["get"])
    def forecast(self, request):
        query, now = self._query(s.ForecastQuerySerializer), timezone.now()
        invoices = billing_forecast(now=now, days=query["days"], currency=query.get("currency"))
        return Response(s.ForecastSerializer({"now": now, "days": query["days"],
                                              "rows": forecast_by_day(invoices=invoices)}).data)

    @_report("Usage totals grouped by meter, customer, day, month or a dimension", s.UsageReportQuerySerializer,
             s.UsageReportSerializer, "Events in [from, to) per currency and group: count, quantity, tokens, "
             "response times and cost (Decimal minor units).")
    @action(detail=False, methods=["get"])
    def usage(self, request):
        query = self._query(s.UsageReportQuerySerializer)
        period = query["range"]
        rows = usage_totals(start=period.start, end=period.end, group_by=query["group_by"],
                            customer_id=query.get("customer"), currency=period.currency)
        return Response(s.UsageReportSerializer({"range": period, "group_by": query["group_by"], "rows": rows}).data)
