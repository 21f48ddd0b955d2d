"""Money reports read from invoices, payments and refunds: the payment summary, revenue and receivables.

Amounts are integer minor units per currency, never converted between currencies."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncMonth

from payments.models import Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus
from payments.selectors.lists import COLLECTED_PAYMENT_STATUSES
from payments.services.mrr_rollups import BILLED_INVOICE_STATUSES
from reports.selectors.periods import ReportRange


def _currency_q(period: ReportRange, field: str = "currency") -> Q:
    return Q(**{field: period.currency}) if period.currency else Q()


@dataclass(frozen=True)
class PaymentSummaryRow:
    currency: str
    method: str
    status: str
    count: int
    amount: int
    amount_refunded: int


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


REVENUE_GROUPS = ("month", "plan", "method")


@dataclass
class RevenueRow:
    currency: str
    # The month (ISO date of its first day), the plan code or the payment method; None where the figure
    # has no such key (an invoice without a plan; invoiced and written-off amounts under group_by=method).
    key: str | None
    invoiced: int = 0
    collected: int = 0
    refunded: int = 0
    written_off: int = 0

    @property
    def net(self) -> int:
        return self.collected - self.refunded


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


# Days past due that open each aging bucket; the last bucket is open-ended.
AGE_BUCKETS = (("current", None), ("1-30", 1), ("31-60", 31), ("61-90", 61), ("over_90", 91))


@dataclass(frozen=True)
class ReceivablesRow:
    currency: str
    bucket: str
    count: int
    amount_due: int


def report_receivables(*, period: ReportRange) -> list[ReceivablesRow]:
    """Invoices open today and issued before the period's end, by how many whole days they were past
    their due date at the period's end (an invoice without a due date, or not yet due, is current). One
    query; every bucket appears for each currency seen."""
    at = period.end
    open_invoices = Invoice.objects.filter(_currency_q(period), status=InvoiceStatus.OPEN, issued_at__lt=at)
    aggregates = {}
    for name, q in _bucket_filters(at).items():
        aggregates[f"{name}__n"] = Count("id", filter=q)
        aggregates[f"{name}__due"] = Coalesce(Sum("amount_due", filter=q), 0)
    rows = open_invoices.values("currency").annotate(**aggregates).order_by("currency")
    seen = {r["currency"]: r for r in rows}
    if period.currency:
        seen.setdefault(period.currency, {})
    return [ReceivablesRow(currency=c, bucket=name, count=seen[c].get(f"{name}__n", 0),
                           amount_due=seen[c].get(f"{name}__due", 0))
            for c in sorted(seen) for name, _ in AGE_BUCKETS]


def _bucket_filters(at: datetime) -> dict[str, Q]:
    """A whole day past due begins 24 hours after the due date: due at 10:00 yesterday is 1 day late from
    10:00 today."""
    filters = {"current": Q(due_date__isnull=True) | Q(due_date__gt=at - timedelta(days=1))}
    bounds = [lower for _, lower in AGE_BUCKETS[1:]]
    for (name, lower), upper in zip(AGE_BUCKETS[1:], [*bounds[1:], None], strict=True):
        q = Q(due_date__lte=at - timedelta(days=lower))
        if upper is not None:
            q &= Q(due_date__gt=at - timedelta(days=upper))
        filters[name] = q
    return filters


@dataclass(frozen=True)
class CollectedRow:
    currency: str
    # First day of the UTC month, ISO.
    month: str
    method: str
    amount: int


def report_collected_by_month_and_method(*, period: ReportRange) -> list[CollectedRow]:
    """Money collected (payments that succeeded in the period) per currency, month and method: the
    revenue chart's stacks. One query."""
    rows = (Payment.objects.filter(_currency_q(period), status__in=COLLECTED_PAYMENT_STATUSES,
                                   succeeded_at__gte=period.start, succeeded_at__lt=period.end)
            .annotate(month=TruncMonth("succeeded_at", tzinfo=UTC)).values_list("currency", "month", "method")
            .annotate(amount=Sum("amount")).order_by("currency", "month", "method"))
    return [CollectedRow(currency=c, month=m.date().isoformat(), method=method, amount=amount)
            for c, m, method, amount in rows]
