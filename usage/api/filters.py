import django_filters

from core.api.filters import ApiFilterSet, DateTimeRangeFilter, NameSearchFilter, QuantityRangeFilter
from usage.models import TEXT_DIMENSIONS, Meter, UsageEvent


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
