import django_filters

from core.api.filters import ApiFilterSet, DateTimeRangeFilter, NameSearchFilter, WholeNumberRangeFilter
from subscriptions.models import BillingInterval, Customer, Plan, Subscription, SubscriptionStatus


class PlanFilter(ApiFilterSet):
    search = NameSearchFilter(fields=("name", "name_ar", "code"))
    amount = WholeNumberRangeFilter(help_text="amount_min / amount_max, minor units.")
    currency = django_filters.CharFilter(lookup_expr="iexact")
    interval = django_filters.ChoiceFilter(choices=BillingInterval.choices)
    feature = django_filters.CharFilter(field_name="features", lookup_expr="contains", method="filter_feature",
                                        help_text="Plans that include this feature code.")

    class Meta:
        model = Plan
        fields = ["code", "is_active", "currency", "interval", "amount"]

    def filter_feature(self, queryset, name, value):
        return queryset.filter(features__contains=[value])


class CustomerFilter(ApiFilterSet):
    search = NameSearchFilter(fields=("name", "name_ar", "email"))
    email = django_filters.CharFilter(lookup_expr="iexact")
    currency = django_filters.CharFilter(lookup_expr="iexact")
    created = DateTimeRangeFilter(field_name="created_at",
                                  help_text="created_after / created_before")

    class Meta:
        model = Customer
        fields = ["email", "currency", "external_id", "created"]


class SubscriptionFilter(ApiFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=SubscriptionStatus.choices)
    plan_code = django_filters.CharFilter(field_name="plan__code")
    created = DateTimeRangeFilter(field_name="created_at")
    current_period_end = DateTimeRangeFilter()

    class Meta:
        model = Subscription
        fields = ["status", "customer", "plan", "plan_code", "cancel_at_period_end", "created", "current_period_end"]
