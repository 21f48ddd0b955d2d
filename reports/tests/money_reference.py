"""The money reports as they were defined before the rollups, straight from the invoices, payments and
refunds: the reference the rollup-backed selectors must equal for any range (test_money_rollups.py)."""

from datetime import UTC, datetime

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncMonth

from payments.models import Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus
from payments.selectors.lists import COLLECTED_PAYMENT_STATUSES
from payments.services.mrr_rollups import BILLED_INVOICE_STATUSES
from reports.selectors.money import CollectedRow, PaymentSummaryRow, RevenueRow
from reports.selectors.periods import ReportRange


def _currency_q(period: ReportRange, field: str = "currency") -> Q:
    return Q(**{field: period.currency}) if period.currency else Q()


def report_payment_summary(*, period: ReportRange) -> list[PaymentSummaryRow]:
    """Payments created in the period: count, amount and amount refunded per currency x method x status.
    Every method and status appears for each currency seen (zeros included), so a rail with no payments
    is visibly zero rather than missing. One query."""
    rows = (Payment.objects.filter(_currency_q(period), created_at__gte=period.start, created_at__lt=period.end)
            .values_list("currency", "method", "status")
            .annotate(n=Count("id"), amount=Sum("amount"), refunded=Sum("amount_refunded")).order_by())
    found = {(c, m, s): (n, a, r) for c, m, s, n, a, r in rows}
    currencies = sorted({c for c, _, _ in found} | ({period.currency} if period.currency else set()))
    return [PaymentSummaryRow(currency=c, method=m, status=s, count=found.get((c, m, s), (0, 0, 0))[0],
                              amount=found.get((c, m, s), (0, 0, 0))[1],
                              amount_refunded=found.get((c, m, s), (0, 0, 0))[2])
            for c in currencies for m in PaymentMethod.values for s in PaymentStatus.values]


def _group_expression(group_by: str, *, time_field: str, plan_path: str, method_path: str | None):
    if group_by == "month":
        return TruncMonth(time_field, tzinfo=UTC)
    if group_by == "plan":
        return F(plan_path)
    return F(method_path) if method_path else None


def _key_text(value) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    return value


def report_revenue(*, period: ReportRange, group_by: str) -> list[RevenueRow]:
    """Invoiced (totals of invoices issued in the period and not voided), collected (payments that
    succeeded in the period), refunded (refunds that succeeded, by when they were made), net (collected -
    refunded) and written off (still due on invoices issued in the period and now uncollectible), per
    currency and group. Four queries."""
    rows: dict[tuple[str, str | None], RevenueRow] = {}

    def add(currency: str, key, **amounts) -> None:
        row = rows.setdefault((currency, _key_text(key)), RevenueRow(currency=currency, key=_key_text(key)))
        for name, value in amounts.items():
            setattr(row, name, getattr(row, name) + (value or 0))

    invoices = Invoice.objects.filter(_currency_q(period), status__in=BILLED_INVOICE_STATUSES,
                                      issued_at__gte=period.start, issued_at__lt=period.end)
    key = _group_expression(group_by, time_field="issued_at", plan_path="subscription__plan__code", method_path=None)
    for currency, k, invoiced, written_off in _grouped(invoices, key, invoiced=Sum("total"), written_off=Sum(
            "amount_due", filter=Q(status=InvoiceStatus.UNCOLLECTIBLE))):
        add(currency, k, invoiced=invoiced, written_off=written_off)
    payments = Payment.objects.filter(_currency_q(period), status__in=COLLECTED_PAYMENT_STATUSES,
                                      succeeded_at__gte=period.start, succeeded_at__lt=period.end)
    key = _group_expression(group_by, time_field="succeeded_at", plan_path="invoice__subscription__plan__code",
                            method_path="method")
    for currency, k, collected in _grouped(payments, key, collected=Sum("amount")):
        add(currency, k, collected=collected)
    refunds = Refund.objects.filter(_currency_q(period), status=RefundStatus.SUCCEEDED,
                                    created_at__gte=period.start, created_at__lt=period.end)
    key = _group_expression(group_by, time_field="created_at",
                            plan_path="payment__invoice__subscription__plan__code", method_path="payment__method")
    for currency, k, refunded in _grouped(refunds, key, refunded=Sum("amount")):
        add(currency, k, refunded=refunded)
    return sorted(rows.values(), key=lambda r: (r.currency, r.key is not None, r.key or ""))


def _grouped(queryset, key, **aggregates):
    if key is None:
        return [(c, None, *rest) for c, *rest in
                queryset.values_list("currency").annotate(**aggregates).values_list("currency", *aggregates)
                .order_by()]
    return (queryset.annotate(report_key=key).values_list("currency", "report_key").annotate(**aggregates)
            .values_list("currency", "report_key", *aggregates).order_by())


def report_collected_by_month_and_method(*, period: ReportRange) -> list[CollectedRow]:
    """Money collected (payments that succeeded in the period) per currency, month and method: the
    revenue chart's stacks. One query."""
    rows = (Payment.objects.filter(_currency_q(period), status__in=COLLECTED_PAYMENT_STATUSES,
                                   succeeded_at__gte=period.start, succeeded_at__lt=period.end)
            .annotate(month=TruncMonth("succeeded_at", tzinfo=UTC)).values_list("currency", "month", "method")
            .annotate(amount=Sum("amount")).order_by("currency", "month", "method"))
    return [CollectedRow(currency=c, month=m.date().isoformat(), method=method, amount=amount)
            for c, m, method, amount in rows]
