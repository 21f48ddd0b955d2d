"""Reads of invoices and payments, and the ledger checks behind `billing verify`."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Greatest, Round
from django.utils import timezone

from credits.selectors import CreditsOutstanding, credit_outstanding
from payments.models import Invoice, InvoiceLine, InvoiceStatus, Payment, PaymentStatus
from subscriptions.models import Customer
from subscriptions.selectors import subscription_counts_by_status, subscription_mrr_by_currency


def invoice_list(*, customer: Customer | None = None) -> QuerySet[Invoice]:
    invoices = Invoice.objects.select_related("customer", "subscription__plan")
    return invoices if customer is None else invoices.filter(customer=customer)


def payment_list(*, customer: Customer | None = None) -> QuerySet[Payment]:
    payments = Payment.objects.select_related("customer", "invoice")
    return payments if customer is None else payments.filter(customer=customer)


# Payments whose money counts towards an invoice (refunds do not reopen a paid invoice).
_COLLECTED = [PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED]


def invoice_total_mismatches() -> list[dict]:
    """Invoices whose stored totals disagree with their lines, lines whose amount is not their quantity
    times unit amount rounded once (half away from zero, as `invoice_line_amount` does), or invoices whose
    amount paid disagrees with their payments (staff 'mark paid' settles without a payment and is
    allowed). The comparisons run in SQL, so only mismatches travel back."""
    mismatches = []
    by_lines = (Invoice.objects.annotate(lines_total=Coalesce(Sum("lines__amount"), Value(0)))
                .filter(~Q(subtotal=F("lines_total")) | ~Q(total=Greatest(F("lines_total"), Value(0)))))
    for invoice in by_lines.iterator(chunk_size=2000):
        mismatches.append({"kind": "invoice_total", "invoice_id": invoice.pk, "number": invoice.number,
                           "stored": invoice.total, "lines": invoice.lines_total})
    due = (Invoice.objects.exclude(status=InvoiceStatus.PAID)
           .exclude(amount_due=Greatest(F("total") - F("amount_paid"), Value(0))))
    for invoice in due.iterator(chunk_size=2000):
        mismatches.append({"kind": "invoice_amount_due", "invoice_id": invoice.pk, "number": invoice.number,
                           "stored": invoice.amount_due, "expected": max(invoice.total - invoice.amount_paid, 0)})
    bad_lines = (InvoiceLine.objects.annotate(exact=Round(F("quantity") * F("unit_amount")))
                 .exclude(amount=F("exact")).select_related("invoice"))
    for line in bad_lines.iterator(chunk_size=2000):
        mismatches.append({"kind": "invoice_line_amount", "invoice_id": line.invoice_id,
                           "number": line.invoice.number, "line_id": line.pk, "stored": line.amount,
                           "expected": int(line.exact)})
    paid = dict(Payment.objects.filter(invoice__isnull=False, status__in=_COLLECTED)
                .values_list("invoice_id").annotate(total=Sum("amount")))
    for invoice in Invoice.objects.filter(Q(amount_paid__gt=0) | Q(pk__in=list(paid))).only("id", "number",
                                                                                          "amount_paid"):
        if invoice.amount_paid != paid.get(invoice.pk, 0):
            mismatches.append({"kind": "invoice_amount_paid", "invoice_id": invoice.pk, "number": invoice.number,
                               "stored": invoice.amount_paid, "payments": paid.get(invoice.pk, 0)})
    return mismatches


@dataclass(frozen=True)
class Receivables:
    """Money owed on issued invoices in one currency (minor units)."""

    currency: str
    open_count: int
    open_amount: int
    # Open invoices whose due date has passed: what collection (dunning) is chasing.
    past_due_count: int
    past_due_amount: int


def invoice_receivables_by_currency(*, now: datetime) -> list[Receivables]:
    """Amount due on open invoices, and on those of them past their due date, per currency. One query."""
    past_due = Q(due_date__lt=now)
    rows = (Invoice.objects.filter(status=InvoiceStatus.OPEN).values("currency")
            .annotate(open_count=Count("id"), open_amount=Sum("amount_due"),
                      past_due_count=Count("id", filter=past_due), past_due_amount=Sum("amount_due", filter=past_due))
            .order_by("currency"))
    return [Receivables(currency=r["currency"], open_count=r["open_count"], open_amount=r["open_amount"] or 0,
                        past_due_count=r["past_due_count"], past_due_amount=r["past_due_amount"] or 0)
            for r in rows]


@dataclass(frozen=True)
class Collected:
    """Payments that succeeded in a window, in one currency (minor units)."""

    currency: str
    count: int
    gross: int
    refunded: int

    @property
    def net(self) -> int:
        return self.gross - self.refunded


def payment_collected_by_currency(*, since: datetime) -> list[Collected]:
    """Money collected by payments that succeeded since `since`, and how much of it went back in
    refunds, per currency. One query."""
    rows = (Payment.objects.filter(status__in=_COLLECTED, succeeded_at__gte=since).values("currency")
            .annotate(count=Count("id"), gross=Sum("amount"), refunded=Sum("amount_refunded"))
            .order_by("currency"))
    return [Collected(currency=r["currency"], count=r["count"], gross=r["gross"] or 0, refunded=r["refunded"] or 0)
            for r in rows]


# The window of the dashboard's "collected" figure.
DASHBOARD_COLLECTED_DAYS = 30


@dataclass(frozen=True)
class DashboardFigures:
    as_of: datetime
    collected_since: datetime
    mrr: dict[str, int]
    subscriptions_by_status: dict[str, int]
    receivables: list[Receivables]
    collected: list[Collected]
    credits: CreditsOutstanding


def dashboard_figures(*, now: datetime | None = None) -> DashboardFigures:
    """The staff dashboard's figures: five queries whatever the size of the business."""
    now = now or timezone.now()
    since = now - timedelta(days=DASHBOARD_COLLECTED_DAYS)
    return DashboardFigures(
        as_of=now, collected_since=since, mrr=subscription_mrr_by_currency(),
        subscriptions_by_status=subscription_counts_by_status(),
        receivables=invoice_receivables_by_currency(now=now), collected=payment_collected_by_currency(since=since),
        credits=credit_outstanding(),
    )


# ------------------------------------------------------------------------------- live payment feed


@dataclass(frozen=True)
class LiveAudience:
    """Whose payments one WebSocket connection may see, decided once when it authenticates."""

    is_staff: bool
    # The customer a non-staff user bills as; None for staff, who see every customer.
    customer_id: int | None = None


@dataclass(frozen=True)
class PaymentLiveFilters:
    """What a live subscription asked for. The snapshot applies it in SQL; every event is matched in
    memory against the few fields the broadcast carries, so delivering an event costs no query."""

    customer_id: int | None = None
    invoice_id: int | None = None
    # Empty means any.
    statuses: frozenset[str] = frozenset()
    methods: frozenset[str] = frozenset()

    def apply(self, payments: QuerySet[Payment]) -> QuerySet[Payment]:
        if self.customer_id is not None:
            payments = payments.filter(customer_id=self.customer_id)
        if self.invoice_id is not None:
            payments = payments.filter(invoice_id=self.invoice_id)
        if self.statuses:
            payments = payments.filter(status__in=self.statuses)
        if self.methods:
            payments = payments.filter(method__in=self.methods)
        return payments

    def matches(self, fields: dict) -> bool:
        """`fields` is the "match" part of a broadcast: customer, invoice, status and method."""
        return ((self.customer_id is None or fields["customer"] == self.customer_id)
                and (self.invoice_id is None or fields["invoice"] == self.invoice_id)
                and (not self.statuses or fields["status"] in self.statuses)
                and (not self.methods or fields["method"] in self.methods))


def payment_live_audience(*, user) -> LiveAudience | None:
    """Staff allowed to view payments see all of them; a customer's user sees its own; anyone else
    nothing (None)."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff and user.has_perm("payments.view_payment"):
        return LiveAudience(is_staff=True)
    customer_id = Customer.objects.filter(user=user).values_list("pk", flat=True).first()
    if customer_id is None:
        return None
    return LiveAudience(is_staff=False, customer_id=customer_id)


def payment_live_snapshot(*, audience: LiveAudience, filters: PaymentLiveFilters,
                          limit: int) -> tuple[list[Payment], int]:
    """The newest `limit` payments matching `filters` that `audience` may see, and how many match."""
    payments = filters.apply(payment_list())
    if not audience.is_staff:
        payments = payments.filter(customer_id=audience.customer_id)
    return list(payments[:limit]), payments.count()


def payment_live_get(*, payment_id: int) -> Payment:
    return payment_list().get(pk=payment_id)
