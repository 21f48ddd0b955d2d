"""Usage shapes. Ingestion parses batches with `usage_batch_parse` instead of a DRF serializer per
event: DRF's field machinery costs tens of microseconds per field per event, which would dominate a
1,000-event request; the rules are the same as `UsageEventInSerializer` (the documented shape)."""

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from core.api.fields import BoundedDateTimeField, ObjectIdField
from core.safe_input import BIGINT_MAX, INTEGER_MAX, datetime_problem, text_problem
from subscriptions.api.serializers import PlanSummarySerializer
from subscriptions.models import Customer, Plan
from usage.models import Meter, ThresholdKind, UsageAlert, UsageEvent, UsageThreshold
from usage.selectors import USAGE_GROUPS
from usage.services import USAGE_BATCH_MAX_EVENTS, UsageEventInput

_QUANTUM = Decimal("0.000001")
_MAX_QUANTITY = Decimal(10) ** 14  # DecimalField(max_digits=20, decimal_places=6)
# Whole sentences per field (a translated noun spliced into a sentence reads wrong in Arabic); lazy, so the
# reader's language is taken when a refusal is written, not when the module is imported.
_NEGATIVE_QUANTITY = gettext_lazy("Usage quantity cannot be negative.")
_NEGATIVE_COST = gettext_lazy("Cost cannot be negative.")


class UsageEventInSerializer(serializers.Serializer):
    meter = serializers.SlugField(max_length=64, help_text="The meter's code.")
    idempotency_key = serializers.CharField(max_length=255,
                                            help_text="Unique per customer: a retried event is stored once.")
    quantity = serializers.DecimalField(max_digits=20, decimal_places=6, min_value=0, default=Decimal(1))
    occurred_at = BoundedDateTimeField(required=False, help_text="Defaults to the time it is received.")
    properties = serializers.DictField(child=serializers.JSONField(), required=False)
    customer = ObjectIdField(required=False, help_text="Staff only: whose usage this is.")
    tokens_used = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=BIGINT_MAX)
    response_time_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=INTEGER_MAX)
    cost = serializers.DecimalField(max_digits=20, decimal_places=6, min_value=0, required=False, allow_null=True,
                                    help_text="Decimal minor units of the customer's currency (0.1 = a tenth "
                                              "of a cent).")
    request_id = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    batch_id = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    endpoint = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    language_code = serializers.CharField(max_length=35, required=False, allow_null=True, allow_blank=True,
                                          help_text="BCP 47 tag (en, ar, pt-BR).")
    category = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)


class UsageBatchInSerializer(serializers.Serializer):
    events = UsageEventInSerializer(many=True, min_length=1, max_length=USAGE_BATCH_MAX_EVENTS)
    customer = ObjectIdField(required=False, help_text="Staff only: whose usage this is.")


def _quantity(value) -> Decimal:
    if value is None:
        return Decimal(1)
    return _non_negative_decimal(value, negative=_NEGATIVE_QUANTITY)


def _non_negative_decimal(value, *, negative: Promise) -> Decimal:
    if type(value) is int and 0 <= value < _MAX_QUANTITY:  # the common case, with nothing to round
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(_("A number is required."))
    try:
        quantity = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(_("A number is required.")) from exc
    if not quantity.is_finite():
        raise ValueError(_("A finite number is required."))
    if quantity < 0:
        raise ValueError(str(negative))
    if quantity >= _MAX_QUANTITY or quantity != quantity.quantize(_QUANTUM):
        raise ValueError(_("At most 14 digits before and 6 after the decimal point."))
    return quantity


def _occurred_at(value) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(_("An ISO 8601 date-time is required."))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(_("An ISO 8601 date-time is required.")) from exc
    if problem := datetime_problem(moment):
        raise ValueError(problem)
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# Typed dimensions: the whole numbers with their column's maximum, the texts with their length.
_WHOLE_DIMENSIONS = {"tokens_used": BIGINT_MAX, "response_time_ms": INTEGER_MAX}
_TEXT_DIMENSIONS = {"request_id": 255, "batch_id": 255, "endpoint": 100, "language_code": 35, "category": 100}


def _dimensions(item: dict, errors: dict[str, list[str]]) -> dict:
    """The typed dimensions the event carries (absent or null ones are left out); problems go to `errors`."""
    found = {}
    for name, maximum in _WHOLE_DIMENSIONS.items():
        value = item.get(name)
        if value is None:
            continue
        if type(value) is not int or not 0 <= value <= maximum:
            errors[name] = [_("A whole number from 0 to %(maximum)s is required.") % {"maximum": maximum}]
        found[name] = value
    if (cost := item.get("cost")) is not None:
        try:
            found["cost"] = str(_non_negative_decimal(cost, negative=_NEGATIVE_COST))
        except ValueError as exc:
            errors["cost"] = [str(exc)]
    for name, length in _TEXT_DIMENSIONS.items():
        value = item.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > length or text_problem(value):
            errors[name] = [_("Text of at most %(length)s characters is required.") % {"length": length}]
        found[name] = value
    return found


def _event(item) -> tuple[UsageEventInput | None, dict[str, list[str]]]:
    if not isinstance(item, dict):
        return None, {"non_field_errors": [_("Each event must be a JSON object.")]}
    errors: dict[str, list[str]] = {}
    meter = item.get("meter")
    if not isinstance(meter, str) or not meter or len(meter) > 64:
        errors["meter"] = [_("A meter code is required.")]
    key = item.get("idempotency_key")
    if not isinstance(key, str) or not key or len(key) > 255:
        errors["idempotency_key"] = [_("An idempotency key of 1 to 255 characters is required.")]
    quantity = occurred_at = None
    try:
        quantity = _quantity(item.get("quantity"))
    except ValueError as exc:
        errors["quantity"] = [str(exc)]
    try:
        occurred_at = _occurred_at(item.get("occurred_at"))
    except ValueError as exc:
        errors["occurred_at"] = [str(exc)]
    properties = item.get("properties", {})
    if not isinstance(properties, dict):
        errors["properties"] = [_("A JSON object is required.")]
    dimensions = _dimensions(item, errors)
    if errors:
        return None, errors
    return UsageEventInput(meter_code=meter, idempotency_key=key, quantity=quantity, occurred_at=occurred_at,
                           properties=properties, dimensions=dimensions), {}


def usage_batch_parse(data) -> tuple[int | None, list[UsageEventInput]]:
    """(customer id for staff, events) from one event or {"events": [...]}; errors are DRF-shaped,
    per event index under `events` (a single event is index 0)."""
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": [_("Send one event or {\"events\": [...]}.")]})
    items = data.get("events", [data])
    if not isinstance(items, list) or not 1 <= len(items) <= USAGE_BATCH_MAX_EVENTS:
        raise serializers.ValidationError(
            {"events": [_("A list of 1 to %(limit)s events is required.") % {"limit": USAGE_BATCH_MAX_EVENTS}]})
    customer = data.get("customer")
    if customer is not None and (isinstance(customer, bool) or not isinstance(customer, int)
                                 or not 1 <= customer <= BIGINT_MAX):
        raise serializers.ValidationError({"customer": [_("A customer id is required.")]})
    events: list[UsageEventInput] = []
    errors: dict[str, dict] = {}
    for index, item in enumerate(items):
        event, problems = _event(item)
        if problems:
            errors[str(index)] = problems
        else:
            events.append(event)
    if errors:
        raise serializers.ValidationError({"events": errors})
    return customer, events


class UsageEventOutcomeSerializer(serializers.Serializer):
    idempotency_key = serializers.CharField()
    status = serializers.ChoiceField(choices=["created", "duplicate"])
    id = serializers.IntegerField(help_text="The stored event's id (the earlier one for a duplicate).")


class UsageBatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    credits_debited = serializers.IntegerField()
    results = UsageEventOutcomeSerializer(many=True, help_text="One per event sent, in the same order.")


class UsageEventSerializer(serializers.ModelSerializer):
    meter = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = UsageEvent
        fields = ["id", "customer", "meter", "quantity", "occurred_at", "idempotency_key", "properties",
                  "tokens_used", "response_time_ms", "cost", "request_id", "batch_id", "endpoint", "language_code",
                  "category", "received_at"]
        read_only_fields = fields


class MeterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Meter
        fields = ["id", "code", "name", "aggregation", "unique_property", "unit", "credits_per_unit", "is_active"]
        read_only_fields = fields


class UsageSummaryQuerySerializer(serializers.Serializer):
    start = BoundedDateTimeField(required=False, help_text="Defaults to the current period's start.")
    end = BoundedDateTimeField(required=False, help_text="Defaults to the current period's end.")
    customer = ObjectIdField(required=False, help_text="Staff only: whose usage.")
    group_by = serializers.ChoiceField(choices=USAGE_GROUPS, required=False,
                                       help_text="Also total the period's events per value of this (`groups`).")

    def validate(self, attrs):
        if ("start" in attrs) != ("end" in attrs):
            raise serializers.ValidationError(_("Give both start and end, or neither."))
        if "start" in attrs and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": [_("The end must be after the start.")]})
        return attrs


class MeterUsageSerializer(serializers.Serializer):
    meter = serializers.CharField(source="meter.code")
    name = serializers.CharField(source="meter.name")
    aggregation = serializers.CharField(source="meter.aggregation")
    unit = serializers.CharField(source="meter.unit")
    value = serializers.DecimalField(max_digits=26, decimal_places=6)


class UsageTotalsSerializer(serializers.Serializer):
    currency = serializers.CharField()
    key = serializers.CharField(allow_blank=True, help_text="The group's value; '' for events without it.")
    events = serializers.IntegerField()
    quantity = serializers.DecimalField(max_digits=30, decimal_places=6)
    tokens_used = serializers.IntegerField()
    response_time_ms_total = serializers.IntegerField()
    response_time_ms_avg = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    cost = serializers.DecimalField(max_digits=30, decimal_places=6, help_text="Decimal minor units of `currency`.")


class UsageSummarySerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    meters = MeterUsageSerializer(many=True)
    groups = UsageTotalsSerializer(many=True, required=False,
                                   help_text="With `group_by`: the period's totals per value of it.")


class MeterPriceSerializer(serializers.Serializer):
    meter = serializers.CharField(source="meter.code")
    unit_amount = serializers.DecimalField(max_digits=18, decimal_places=6,
                                           help_text="Minor units per unit beyond the included ones.")
    included_units = serializers.DecimalField(max_digits=20, decimal_places=6)


class EntitlementLimitsSerializer(serializers.Serializer):
    rate_limit_per_minute = serializers.IntegerField(help_text="0 means unlimited.")
    rate_limit_per_hour = serializers.IntegerField(help_text="0 means unlimited.")
    api_calls_per_day = serializers.IntegerField(help_text="0 means unlimited.")


class EntitlementsSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    subscription = serializers.IntegerField(allow_null=True)
    subscription_status = serializers.CharField(allow_null=True)
    plan = PlanSummarySerializer(allow_null=True)
    features = serializers.ListField(child=serializers.CharField())
    limits = EntitlementLimitsSerializer()
    credits_per_period = serializers.IntegerField()
    credit_balance = serializers.IntegerField()
    meter_prices = MeterPriceSerializer(many=True)


class CustomerQuerySerializer(serializers.Serializer):
    customer = ObjectIdField(required=False, help_text="Staff only: which customer.")


class UsageThresholdSerializer(serializers.ModelSerializer):
    meter = serializers.SlugRelatedField(slug_field="code", read_only=True, help_text="The meter's code (null for "
                                                                                        "credit_balance).")

    class Meta:
        model = UsageThreshold
        fields = ["id", "name", "plan", "customer", "meter", "kind", "value", "hard_cap", "created_at"]
        read_only_fields = fields


class UsageThresholdWriteSerializer(serializers.Serializer):
    """The shape only; which combinations are valid is usage.threshold_services' rule (400 naming the field)."""

    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.all(), required=False, allow_null=True,
                                              default=None, help_text="Every customer on this plan (or `customer`).")
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all(), required=False, allow_null=True,
                                                  default=None, help_text="One customer (or `plan`).")
    meter = serializers.SlugRelatedField(slug_field="code", queryset=Meter.objects.all(), required=False,
                                         allow_null=True, default=None,
                                         help_text="The meter's code; leave out for credit_balance.")
    kind = serializers.ChoiceField(choices=ThresholdKind.choices,
                                   help_text="units: usage units; included_percent: percent of the plan's included "
                                             "units; charge: usage charge in minor units; credit_balance: the "
                                             "credit balance falls to `value` or below.")
    value = serializers.DecimalField(max_digits=20, decimal_places=6, min_value=Decimal(0))
    hard_cap = serializers.BooleanField(required=False, default=False,
                                        help_text="Refuse (402) usage that would pass it; meter kinds only.")
    name = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)


class UsageAlertSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(source="threshold.kind", read_only=True)
    threshold_name = serializers.CharField(source="threshold.__str__", read_only=True)
    meter = serializers.SlugRelatedField(source="threshold.meter", slug_field="code", read_only=True)

    class Meta:
        model = UsageAlert
        fields = ["id", "threshold", "threshold_name", "kind", "meter", "customer", "period_start", "observed",
                  "created_at"]
        read_only_fields = fields
