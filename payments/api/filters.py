import django_filters

from core.api.filters import ApiFilterSet, DateTimeRangeFilter, WholeNumberRangeFilter
from payments.models import (
    BillingReason,
    CreditPackOrder,
    CreditPackOrderStatus,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
)


class InvoiceFilter(ApiFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=InvoiceStatus.choices)
    billing_reason = django_filters.MultipleChoiceFilter(choices=BillingReason.choices)
    currency = django_filters.CharFilter(lookup_expr="iexact")
    total = WholeNumberRangeFilter(help_text="total_min / total_max, minor units.")
    amount_due = WholeNumberRangeFilter()
    issued = DateTimeRangeFilter(field_name="issued_at")
    due = DateTimeRangeFilter(field_name="due_date")
    created = DateTimeRangeFilter(field_name="created_at")

    class Meta:
        model = Invoice
        fields = ["number", "customer", "subscription", "status", "billing_reason", "currency", "total", "amount_due",
                  "issued", "due", "created"]


class PaymentFilter(ApiFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=PaymentStatus.choices)
    method = django_filters.MultipleChoiceFilter(choices=PaymentMethod.choices)
    currency = django_filters.CharFilter(lookup_expr="iexact")
    amount = WholeNumberRangeFilter(help_text="amount_min / amount_max, minor units.")
    created = DateTimeRangeFilter(field_name="created_at")
    succeeded = DateTimeRangeFilter(field_name="succeeded_at")

    class Meta:
        model = Payment
        fields = ["customer", "invoice", "status", "method", "currency", "amount", "created", "succeeded"]


class CreditPackOrderFilter(ApiFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=CreditPackOrderStatus.choices)
    created = DateTimeRangeFilter(field_name="created_at")

    class Meta:
        model = CreditPackOrder
        fields = ["customer", "invoice", "status", "created"]
