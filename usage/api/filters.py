import django_filters

from usage.models import UsageEvent


class UsageEventFilter(django_filters.FilterSet):
    meter = django_filters.CharFilter(field_name="meter__code", help_text="Meter code.")
    occurred = django_filters.IsoDateTimeFromToRangeFilter(field_name="occurred_at",
                                                           help_text="occurred_after / occurred_before")
    received = django_filters.IsoDateTimeFromToRangeFilter(field_name="received_at")
    quantity = django_filters.RangeFilter()

    class Meta:
        model = UsageEvent
        fields = ["customer", "meter", "idempotency_key", "occurred", "received", "quantity"]
