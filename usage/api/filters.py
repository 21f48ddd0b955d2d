import django_filters

from core.api.filters import ApiFilterSet, DateTimeRangeFilter, NameSearchFilter, QuantityRangeFilter
from usage.models import TEXT_DIMENSIONS, Meter, ThresholdKind, UsageAlert, UsageEvent, UsageThreshold


class UsageEventFilter(ApiFilterSet):
    meter = django_filters.CharFilter(field_name="meter__code", help_text="Meter code.")
    occurred = DateTimeRangeFilter(field_name="occurred_at",
                                   help_text="occurred_after / occurred_before")
    received = DateTimeRangeFilter(field_name="received_at")
    quantity = QuantityRangeFilter()

    class Meta:
        model = UsageEvent
        fields = ["customer", "meter", "idempotency_key", "occurred", "received", "quantity",
                  *TEXT_DIMENSIONS]


class MeterFilter(ApiFilterSet):
    search = NameSearchFilter(fields=("name", "code"))

    class Meta:
        model = Meter
        fields = ["code", "aggregation", "is_active"]


class UsageThresholdFilter(ApiFilterSet):
    meter = django_filters.CharFilter(field_name="meter__code", help_text="Meter code.")

    class Meta:
        model = UsageThreshold
        fields = ["plan", "customer", "meter", "kind", "hard_cap"]


class UsageAlertFilter(ApiFilterSet):
    meter = django_filters.CharFilter(field_name="threshold__meter__code", help_text="Meter code.")
    kind = django_filters.ChoiceFilter(field_name="threshold__kind", choices=ThresholdKind.choices)
    created = DateTimeRangeFilter(field_name="created_at", help_text="created_after / created_before")

    class Meta:
        model = UsageAlert
        fields = ["customer", "threshold", "meter", "kind", "created"]
