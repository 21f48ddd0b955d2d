import django_filters

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


class InvoiceFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=InvoiceStatus.choices)
    billing_reason = django_filters.MultipleChoiceFilter(choices=BillingReason.choices)
    currency = django_filters.CharFilter(lookup_expr="iexact")
    total = django_filters.RangeFilter(help_text="total_min / total_max, minor units.")
    amount_due = django_filters.RangeFilter()
    issued = django_filters.IsoDateTimeFromToRangeFilter(field_name="issued_at")
    due = django_filters.IsoDateTimeFromToRangeFilter(field_name="due_date")
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")

    class Meta:
        model = Invoice
        fields = ["number", "customer", "subscription", "status", "billing_reason", "currency", "total", "amount_due",
                  "issued", "due", "created"]


class PaymentFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=PaymentStatus.choices)
    method = django_filters.MultipleChoiceFilter(choices=PaymentMethod.choices)
    currency = django_filters.CharFilter(lookup_expr="iexact")
    amount = django_filters.RangeFilter(help_text="amount_min / amount_max, minor units.")
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")
    succeeded = django_filters.IsoDateTimeFromToRangeFilter(field_name="succeeded_at")

    class Meta:
        model = Payment
        fields = ["customer", "invoice", "status", "method", "currency", "amount", "created", "succeeded"]


class CreditPackOrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=CreditPackOrderStatus.choices)
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")

    class Meta:
        model = CreditPackOrder
        fields = ["customer", "invoice", "status", "created"]
