"""Reads of prepaid credits."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from core.exports import ExportSpec
from credits.models import CreditBalance, CreditGrant, CreditLedgerEntry, CreditSource, LedgerKind
from subscriptions.models import LIVE_SUBSCRIPTION_STATUSES, Customer, Subscription, SubscriptionStatus


def credit_balance_get(*, customer: Customer) -> int:
    row = CreditBalance.objects.filter(customer=customer).only("balance").first()
    return row.balance if row else 0


def credit_ledger_list(*, customer: Customer | None = None) -> QuerySet[CreditLedgerEntry]:
    entries = CreditLedgerEntry.objects.select_related("customer", "grant", "actor")
    return entries if customer is None else entries.filter(customer=customer)


def credit_grant_list(*, customer: Customer | None = None) -> QuerySet[CreditGrant]:
    grants = CreditGrant.objects.select_related("customer")
    return grants if customer is None else grants.filter(customer=customer)


def credit_customers_with_grants_due(*, now: datetime) -> list[int]:
    """Customers with a grant to expire at `now`, in primary-key order: the expiry step's work list.

    Read once per run and cut into batches, so each batch is a primary-key lookup however stale the
    table's statistics are (a run that just wrote 100,000 grants must not rescan them per batch)."""
    return list(CreditGrant.objects.filter(spendable=True, expires_at__lte=now)
                .order_by("customer_id").values_list("customer_id", flat=True).distinct())


def _newest_ledger_rows() -> QuerySet[CreditLedgerEntry]:
    """Each customer's newest ledger row: DISTINCT ON on PostgreSQL; SQLite (the embedded default) has
    no DISTINCT ON, so there it is the rows whose id is their customer's highest."""
    entries = CreditLedgerEntry.objects.order_by("customer_id", "-id")
    if connection.vendor == "sqlite":
        newest_ids = CreditLedgerEntry.objects.values("customer_id").annotate(newest=Max("id")).values("newest")
        return entries.filter(pk__in=newest_ids)
    return entries.distinct("customer_id")


def credit_balance_mismatches() -> list[dict]:
    """Every customer whose balance row, or grant, disagrees with the append-only ledger."""
    mismatches = []
    ledger_sums = dict(CreditLedgerEntry.objects.values_list("customer_id").annotate(total=Sum("amount")))
    for row in CreditBalance.objects.all().iterator():
        expected = ledger_sums.pop(row.customer_id, 0)
        if expected != row.balance:
            mismatches.append({"kind": "credit_balance", "customer_id": row.customer_id,
                               "stored": row.balance, "ledger": expected})
    for customer_id, total in ledger_sums.items():
        if total:
            mismatches.append({"kind": "credit_balance", "customer_id": customer_id, "stored": 0, "ledger": total})
    # Each customer's newest ledger row must say the balance the ledger adds up to.
    newest = _newest_ledger_rows().values_list("customer_id", "balance_after")
    totals = dict(CreditLedgerEntry.objects.values_list("customer_id").annotate(total=Sum("amount")))
    for customer_id, balance_after in newest.iterator(chunk_size=5000):
        if balance_after != totals.get(customer_id, 0):
            mismatches.append({"kind": "credit_balance_after", "customer_id": customer_id,
                               "stored": balance_after, "ledger": totals.get(customer_id, 0)})
    grants = (CreditGrant.objects.annotate(allocated=Coalesce(Sum("allocations__amount"), Value(0)))
              .exclude(remaining=F("allocated")))
    for grant in grants.iterator(chunk_size=2000):
        mismatches.append({"kind": "credit_grant", "grant_id": grant.pk, "customer_id": grant.customer_id,
                           "stored": grant.remaining, "ledger": grant.allocated})
    return mismatches


@dataclass(frozen=True)
class CreditsOutstanding:
    # Credits granted and not yet spent or expired: what customers can still consume.
    credits: int
    customers: int


def credit_outstanding() -> CreditsOutstanding:
    """Unspent credits over all customers, from the balance rows (equal to the ledger; `billing verify`
    checks it). One query."""
    totals = CreditBalance.objects.aggregate(credits=Sum("balance"), customers=Count("pk", filter=Q(balance__gt=0)))
    return CreditsOutstanding(credits=totals["credits"] or 0, customers=totals["customers"])


@dataclass(frozen=True)
class NextRefill:
    at: datetime
    credits: int


@dataclass(frozen=True)
class CreditAccountTotals:
    """A customer's credits as an account statement, from its ledger: balance = purchased + granted - used
    - expired + adjusted."""

    balance: int
    purchased: int
    # Every other grant: plan refills, promotions, staff grants.
    granted: int
    # Spent net of refunded debits.
    used: int
    expired: int
    # Ledger adjustments (either sign).
    adjusted: int
    # Used in the current subscription period (0 without a live subscription).
    used_this_period: int
    period_start: datetime | None
    period_end: datetime | None
    # The plan refill the next renewal grants; None when nothing renews with credits.
    next_refill: NextRefill | None


# Subscriptions whose next renewal refills credits (paused, incomplete and ending ones do not).
_REFILLING_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


def _next_refill(subscription: Subscription | None) -> NextRefill | None:
    if subscription is None or subscription.status not in _REFILLING_STATUSES or subscription.cancel_at_period_end:
        return None
    plan = subscription.scheduled_plan or subscription.plan
    if plan.credits_per_period <= 0:
        return None
    return NextRefill(at=subscription.current_period_end, credits=plan.credits_per_period)


def credit_account_totals(*, customer: Customer) -> CreditAccountTotals:
    """Totals of the customer's credit ledger, those of its current period, and its next refill. Two
    queries (the subscription, then the ledger sums)."""
    subscription = (Subscription.objects.select_related("plan", "scheduled_plan")
                    .filter(customer=customer, status__in=LIVE_SUBSCRIPTION_STATUSES).first())
    start, end = (subscription.current_period_start, subscription.current_period_end) if subscription else (None, None)
    spent = Q(kind__in=[LedgerKind.DEBIT, LedgerKind.REFUND])
    purchase = Q(kind=LedgerKind.GRANT, grant__source=CreditSource.PURCHASE)
    sums = {
        "balance": Sum("amount"),
        "purchased": Sum("amount", filter=purchase),
        "granted": Sum("amount", filter=Q(kind=LedgerKind.GRANT) & ~purchase),
        "used": Sum("amount", filter=spent),
        "expired": Sum("amount", filter=Q(kind=LedgerKind.EXPIRY)),
        "adjusted": Sum("amount", filter=Q(kind=LedgerKind.ADJUSTMENT)),
    }
    if start is not None:
        sums["used_this_period"] = Sum("amount", filter=spent & Q(created_at__gte=start, created_at__lt=end))
    totals = {"used_this_period": 0}
    totals |= {k: v or 0 for k, v in CreditLedgerEntry.objects.filter(customer=customer).aggregate(**sums).items()}
    return CreditAccountTotals(
        balance=totals["balance"], purchased=totals["purchased"], granted=totals["granted"], used=-totals["used"],
        expired=-totals["expired"], adjusted=totals["adjusted"], used_this_period=-totals["used_this_period"],
        period_start=start, period_end=end, next_refill=_next_refill(subscription))


CREDIT_LEDGER_EXPORT = ExportSpec(name="credit-ledger", columns=(
    ("id", "id"), ("customer_id", "customer_id"), ("kind", "kind"), ("amount", "amount"),
    ("balance_after", "balance_after"), ("grant_id", "grant_id"), ("idempotency_key", "idempotency_key"),
    ("created_at", "created_at"), ("actor", "actor_label"), ("reason", "reason"),
))
