"""The staff dashboard's figures: receivables, money collected, MRR, subscriptions and credits."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from credits.selectors import CreditsOutstanding, credit_outstanding
from payments.models import Invoice, InvoiceStatus, Payment
from payments.selectors.lists import COLLECTED_PAYMENT_STATUSES
from subscriptions.selectors import subscription_counts_by_status, subscription_mrr_by_currency


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
    rows = (Payment.objects.filter(status__in=COLLECTED_PAYMENT_STATUSES, succeeded_at__gte=since).values("currency")
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
