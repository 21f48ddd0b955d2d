"""The report endpoints under /api/v1/reports/: staff with `reports.view_reports` only (a customer is
answered 404, as for anything it may not know exists). Parameters are checked by the query serializers,
figures come from reports.selectors and payments.billing.forecast_classes; the views only wire them."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.api.errors import error_responses
from payments.billing.forecast_classes import billing_forecast_days
from reports.api import serializers as s
from reports.api.csv import CsvRenderer, csv_report_response
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
from usage.api.serializers import UsageTotalsSerializer
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
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CsvRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        # An error is JSON in the API's error shape whatever format was asked for.
        if isinstance(response, Response) and response.status_code >= 400 and \
                getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    def _answer(self, *, name: str, data: dict, rows_key: str, row_serializer, start, end):
        """The serialized report as JSON, or with `?format=csv` its rows as a streamed CSV file."""
        if self.request.accepted_renderer.format == "csv":
            return csv_report_response(name=name, row_serializer=row_serializer, rows=data[rows_key], start=start,
                                       end=end)
        return Response(data)

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
        data = s.PaymentSummarySerializer({"range": period, "rows": report_payment_summary(period=period)}).data
        return self._answer(name="payment-summary", data=data, rows_key="rows",
                            row_serializer=s.PaymentSummaryRowSerializer(), start=period.start, end=period.end)

    @_report("Revenue: invoiced, collected, refunded, net, written off", s.RevenueQuerySerializer,
             s.RevenueSerializer)
    @action(detail=False, methods=["get"])
    def revenue(self, request):
        query = self._query(s.RevenueQuerySerializer)
        period = query["range"]
        rows = report_revenue(period=period, group_by=query["group_by"])
        data = s.RevenueSerializer({"range": period, "group_by": query["group_by"], "rows": rows}).data
        return self._answer(name=f"revenue-by-{query['group_by']}", data=data, rows_key="rows",
                            row_serializer=s.RevenueRowSerializer(), start=period.start, end=period.end)

    @_report("MRR at each month end and its movements", s.MrrQuerySerializer, s.MrrSerializer,
             "The movements of each window add up to mrr_end - mrr_start.")
    @action(detail=False, methods=["get"])
    def mrr(self, request):
        query = self._query(s.MrrQuerySerializer)
        period = query["range"]
        data = s.MrrSerializer({"range": period, "interval": query["interval"],
                                "points": report_mrr(period=period)}).data
        return self._answer(name="mrr", data=data, rows_key="points", row_serializer=s.MrrPointSerializer(),
                            start=period.start, end=period.end)

    @_report("Logo and revenue churn per month", s.ReportQuerySerializer, s.ChurnSerializer)
    @action(detail=False, methods=["get"])
    def churn(self, request):
        period = self._query(s.ReportQuerySerializer)["range"]
        data = s.ChurnSerializer({"range": period, "rows": report_churn(period=period)}).data
        return self._answer(name="churn", data=data, rows_key="rows", row_serializer=s.ChurnRowSerializer(),
                            start=period.start, end=period.end)

    @_report("Subscriptions by status and by plan at `to`", s.ReportQuerySerializer, s.SubscriptionCountsSerializer)
    @action(detail=False, methods=["get"])
    def subscriptions(self, request):
        period = self._query(s.ReportQuerySerializer)["range"]
        counts = report_subscriptions(at=period.end, currency=period.currency)
        data = s.SubscriptionCountsSerializer(counts).data
        if self.request.accepted_renderer.format != "csv":
            return Response(data)
        return csv_report_response(name="subscriptions", row_serializer=s.SubscriptionCountRowSerializer(),
                                   rows=s.subscription_count_rows(data), start=None, end=period.end)

    @_report("Open invoices by age at `to`", s.ReportQuerySerializer, s.ReceivablesSerializer,
             "Open invoices issued before `to`, by whole days past due at `to`: current, 1-30, 31-60, 61-90, "
             "over 90.")
    @action(detail=False, methods=["get"])
    def receivables(self, request):
        period = self._query(s.ReportQuerySerializer)["range"]
        data = s.ReceivablesSerializer({"at": period.end, "rows": report_receivables(period=period)}).data
        return self._answer(name="receivables", data=data, rows_key="rows", row_serializer=s.ReceivablesRowSerializer(),
                            start=None, end=period.end)

    @_report("Credits granted, purchased, used and expired per month", s.ReportQuerySerializer,
             s.CreditsReportSerializer)
    @action(detail=False, methods=["get"])
    def credits(self, request):
        period = self._query(s.ReportQuerySerializer)["range"]
        months = report_credits(period_start=period.start, period_end=period.end, currency=period.currency)
        data = s.CreditsReportSerializer({"range": period, "months": months}).data
        return self._answer(name="credits", data=data, rows_key="months", row_serializer=s.CreditMonthSerializer(),
                            start=period.start, end=period.end)

    @_report("Invoices the billing run will issue in the next N days", s.ForecastQuerySerializer,
             s.ForecastSerializer, "Per day and currency, from the same renewal decision the billing run uses; "
             "nothing is written.")
    @action(detail=False, methods=["get"])
    def forecast(self, request):
        query, now = self._query(s.ForecastQuerySerializer), timezone.now()
        rows = billing_forecast_days(now=now, days=query["days"], currency=query.get("currency"))
        data = s.ForecastSerializer({"now": now, "days": query["days"], "rows": rows}).data
        return self._answer(name=f"forecast-{query['days']}-days", data=data, rows_key="rows",
                            row_serializer=s.ForecastDaySerializer(), start=now,
                            end=now + timedelta(days=query["days"]))

    @_report("Usage totals grouped by meter, customer, day, month or a dimension", s.UsageReportQuerySerializer,
             s.UsageReportSerializer, "Events in [from, to) per currency and group: count, quantity, tokens, "
             "response times and cost (Decimal minor units).")
    @action(detail=False, methods=["get"])
    def usage(self, request):
        query = self._query(s.UsageReportQuerySerializer)
        period = query["range"]
        rows = usage_totals(start=period.start, end=period.end, group_by=query["group_by"],
                            customer_id=query.get("customer"), currency=period.currency)
        data = s.UsageReportSerializer({"range": period, "group_by": query["group_by"], "rows": rows}).data
        return self._answer(name=f"usage-by-{query['group_by']}", data=data, rows_key="rows",
                            row_serializer=UsageTotalsSerializer(), start=period.start, end=period.end)
