"""Finance reports: read-only figures computed from the ledgers and invoices of every app below."""

from reports.selectors.credits import CreditMonth, report_credits
from reports.selectors.money import (
    AGE_BUCKETS,
    REVENUE_GROUPS,
    CollectedRow,
    PaymentSummaryRow,
    ReceivablesRow,
    RevenueRow,
    report_collected_by_month_and_method,
    report_payment_summary,
    report_receivables,
    report_revenue,
)
from reports.selectors.mrr import MOVEMENTS, ChurnRow, MrrPoint, report_churn, report_mrr
from reports.selectors.periods import ReportRange
from reports.selectors.subscriptions import SubscriptionCounts, report_subscriptions

__all__ = [
    "AGE_BUCKETS", "MOVEMENTS", "REVENUE_GROUPS", "ChurnRow", "CollectedRow", "CreditMonth", "MrrPoint",
    "PaymentSummaryRow", "ReceivablesRow", "ReportRange", "RevenueRow", "SubscriptionCounts", "report_churn",
    "report_collected_by_month_and_method", "report_credits", "report_mrr", "report_payment_summary",
    "report_receivables", "report_revenue", "report_subscriptions",
]
