"""Reads of prepaid credits."""

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum

from credits.models import CreditBalance, CreditGrant, CreditLedgerEntry
from subscriptions.models import Customer


def credit_balance_get(*, customer: Customer) -> int:
    row = CreditBalance.objects.filter(customer=customer).only("balance").first()
    return row.balance if row else 0


def credit_ledger_list(*, customer: Customer | None = None) -> QuerySet[CreditLedgerEntry]:
    entries = CreditLedgerEntry.objects.select_related("customer", "grant", "actor")
    return entries if customer is None else entries.filter(customer=customer)


def credit_grant_list(*, customer: Customer | None = None) -> QuerySet[CreditGrant]:
    grants = CreditGrant.objects.select_related("customer")
    return grants if customer is None else grants.filter(customer=customer)


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
    grants = CreditGrant.objects.annotate(allocated=Sum("allocations__amount")).iterator()
    for grant in grants:
        if (grant.allocated or 0) != grant.remaining:
            mismatches.append({"kind": "credit_grant", "grant_id": grant.pk, "stored": grant.remaining,
                               "ledger": grant.allocated or 0})
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
