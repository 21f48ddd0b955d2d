"""Query parameters and answers of the report endpoints. Parameters are checked here (400 naming the
parameter); the figures come from reports.selectors."""

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers

from core.api.fields import BoundedDateTimeField, ObjectIdField
from core.command_args import CLOCK_MAX, CLOCK_MIN
from payments.billing.forecast import MAX_FORECAST_DAYS
from reports.selectors import AGE_BUCKETS, REVENUE_GROUPS, ReportRange
from reports.selectors.periods import month_start
from subscriptions.periods import add_months
from usage.api.serializers import UsageTotalsSerializer
from usage.selectors import USAGE_GROUPS

# Longer ranges cut into more month windows than anyone reads and hold a connection for long.
MAX_REPORT_MONTHS = 120
DEFAULT_REPORT_MONTHS = 12


def _default_end() -> datetime:
    """The first instant of next month (UTC): the current month is included, to date."""
    return add_months(month_start(timezone.now()), 1)


def currency_field() -> serializers.RegexField:
    return serializers.RegexField(r"^[A-Z]{3}\Z", required=False, max_length=3,
                                  help_text="ISO 4217 code; default every currency, one row each (amounts are "
                                            "never converted).")


class ReportQuerySerializer(serializers.Serializer):
    # `from` is a Python keyword, so the field is declared through the class namespace.
    vars()["from"] = BoundedDateTimeField(
        required=False, help_text="Start of the half-open UTC range [from, to); default 12 months before `to`.")
    to = BoundedDateTimeField(required=False, help_text="End of the range (excluded); default the first instant "
                                                        "of next month (UTC).")
    currency = currency_field()

    def validate(self, attrs):
        for name in ("from", "to"):
            if name in attrs and not CLOCK_MIN <= attrs[name].replace(tzinfo=attrs[name].tzinfo or UTC) < CLOCK_MAX:
                raise serializers.ValidationError({name: [
                    _("Reports cover %(minimum)s to %(maximum)s (UTC), as the billing clock does.")
                    % {"minimum": f"{CLOCK_MIN:%Y-%m-%d}", "maximum": f"{CLOCK_MAX:%Y-%m-%d}"}]})
        end = attrs.get("to") or _default_end()
        start = attrs.get("from") or max(add_months(end, -DEFAULT_REPORT_MONTHS), CLOCK_MIN)
        if start.tzinfo is None or end.tzinfo is None:
            start, end = start.replace(tzinfo=start.tzinfo or UTC), end.replace(tzinfo=end.tzinfo or UTC)
        if start >= end:
            raise serializers.ValidationError({"to": [_("`to` must be after `from`.")]})
        if add_months(start, MAX_REPORT_MONTHS) < end:
            raise serializers.ValidationError({"from": [_("A report covers at most %(months)s months.")
                                                        % {"months": MAX_REPORT_MONTHS}]})
        attrs["range"] = ReportRange(start=start, end=end, currency=attrs.get("currency"))
        return attrs


class RevenueQuerySerializer(ReportQuerySerializer):
    group_by = serializers.ChoiceField(choices=REVENUE_GROUPS, default="month")


class MrrQuerySerializer(ReportQuerySerializer):
    interval = serializers.ChoiceField(choices=["month"], default="month",
                                       help_text="The length of each window; months only.")


class ForecastQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=MAX_FORECAST_DAYS, default=30)
    currency = currency_field()


class RangeSerializer(serializers.Serializer):
    vars()["from"] = serializers.DateTimeField(source="start")
    to = serializers.DateTimeField(source="end")
    currency = serializers.CharField(allow_null=True)


class UsageReportQuerySerializer(ReportQuerySerializer):
    group_by = serializers.ChoiceField(choices=USAGE_GROUPS, default="meter")
    customer = ObjectIdField(required=False, help_text="Only this customer's usage.")


class UsageReportSerializer(serializers.Serializer):
    range = RangeSerializer()
    group_by = serializers.CharField()
    rows = UsageTotalsSerializer(many=True)


class PaymentSummaryRowSerializer(serializers.Serializer):
    currency = serializers.CharField()
    method = serializers.CharField()
    status = serializers.CharField()
    count = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="Minor units.")
    amount_refunded = serializers.IntegerField(help_text="Minor units.")


class PaymentSummarySerializer(serializers.Serializer):
    range = RangeSerializer()
    rows = PaymentSummaryRowSerializer(many=True)


class RevenueRowSerializer(serializers.Serializer):
    currency = serializers.CharField()
    key = serializers.CharField(allow_null=True, help_text="Month (first day), plan code or payment method.")
    invoiced = serializers.IntegerField()
    collected = serializers.IntegerField()
    refunded = serializers.IntegerField()
    net = serializers.IntegerField()
    written_off = serializers.IntegerField()


class RevenueSerializer(serializers.Serializer):
    range = RangeSerializer()
    group_by = serializers.ChoiceField(choices=REVENUE_GROUPS)
    rows = RevenueRowSerializer(many=True)


class MrrMovementsSerializer(serializers.Serializer):
    new = serializers.IntegerField(help_text="MRR of customers paying for the first time.")
    expansion = serializers.IntegerField(help_text="MRR added by customers who pay more.")
    contraction = serializers.IntegerField(help_text="MRR lost by customers who pay less (negative).")
    churned = serializers.IntegerField(help_text="MRR lost by customers who stopped paying (negative).")
    reactivated = serializers.IntegerField(help_text="MRR of customers paying again after a stop.")


class MrrPointSerializer(serializers.Serializer):
    currency = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    mrr_start = serializers.IntegerField()
    mrr_end = serializers.IntegerField()
    movements = MrrMovementsSerializer()


class MrrSerializer(serializers.Serializer):
    range = RangeSerializer()
    interval = serializers.CharField()
    points = MrrPointSerializer(many=True)


class ChurnRowSerializer(serializers.Serializer):
    currency = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    customers_start = serializers.IntegerField()
    customers_churned = serializers.IntegerField()
    logo_churn_rate = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    mrr_start = serializers.IntegerField()
    revenue_churn_rate = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)


class ChurnSerializer(serializers.Serializer):
    range = RangeSerializer()
    rows = ChurnRowSerializer(many=True)


class PlanCountSerializer(serializers.Serializer):
    plan = serializers.CharField()
    currency = serializers.CharField()
    count = serializers.IntegerField()


class SubscriptionCountsSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    by_plan = PlanCountSerializer(many=True)


class SubscriptionCountRowSerializer(serializers.Serializer):
    """A CSV row of the subscriptions report: a status count, or a plan's live subscriptions."""

    kind = serializers.ChoiceField(choices=["status", "plan"])
    key = serializers.CharField(help_text="The status or the plan code.")
    currency = serializers.CharField(allow_null=True, help_text="The plan's currency; empty for a status.")
    count = serializers.IntegerField()


def subscription_count_rows(data: dict) -> list[dict]:
    """The subscriptions report's two figures as one table (for CSV)."""
    return ([{"kind": "status", "key": status, "currency": None, "count": n} for status, n in data["by_status"].items()]
            + [{"kind": "plan", "key": row["plan"], "currency": row["currency"], "count": row["count"]}
               for row in data["by_plan"]])


class ReceivablesRowSerializer(serializers.Serializer):
    currency = serializers.CharField()
    bucket = serializers.ChoiceField(choices=[name for name, _ in AGE_BUCKETS])
    count = serializers.IntegerField()
    amount_due = serializers.IntegerField()


class ReceivablesSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    rows = ReceivablesRowSerializer(many=True)


class CreditMonthSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    granted = serializers.IntegerField()
    purchased = serializers.IntegerField()
    used = serializers.IntegerField()
    expired = serializers.IntegerField()
    refunded = serializers.IntegerField()
    adjusted = serializers.IntegerField()
    outstanding = serializers.IntegerField()


class CreditsReportSerializer(serializers.Serializer):
    range = RangeSerializer()
    months = CreditMonthSerializer(many=True)


class ForecastDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    currency = serializers.CharField()
    invoices = serializers.IntegerField()
    total = serializers.IntegerField()


class ForecastSerializer(serializers.Serializer):
    now = serializers.DateTimeField()
    days = serializers.IntegerField()
    rows = ForecastDaySerializer(many=True)
