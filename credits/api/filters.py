import django_filters

from core.api.filters import ApiFilterSet, DateTimeRangeFilter, WholeNumberRangeFilter
from credits.models import CreditGrant, CreditLedgerEntry, CreditSource, LedgerKind


class CreditLedgerFilter(ApiFilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=LedgerKind.choices)
    amount = WholeNumberRangeFilter()
    created = DateTimeRangeFilter(field_name="created_at")

    class Meta:
        model = CreditLedgerEntry
        fields = ["customer", "kind", "grant", "amount", "created"]


class CreditGrantFilter(ApiFilterSet):
    source = django_filters.MultipleChoiceFilter(choices=CreditSource.choices)
    amount = WholeNumberRangeFilter()
    expires = DateTimeRangeFilter(field_name="expires_at")
    created = DateTimeRangeFilter(field_name="created_at")
    has_remaining = django_filters.BooleanFilter(method="filter_has_remaining",
                                                 help_text="true: grants with credits left.")

    class Meta:
        model = CreditGrant
        fields = ["customer", "source", "amount", "expires", "created", "has_remaining"]

    def filter_has_remaining(self, queryset, name, value):
        return queryset.filter(spendable=value)
