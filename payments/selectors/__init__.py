"""Reads of invoices and payments, the ledger checks behind `billing verify`, the staff dashboard's
figures and the live payment feed.

Modules, lowest first: lists <- ledger_checks, dashboard, live_feed, payment_details; exports says what the
CSV exports write. Callers import from `payments.selectors`; every public name stays available here."""

from payments.selectors.dashboard import (
    DASHBOARD_COLLECTED_DAYS,
    Collected,
    DashboardFigures,
    Receivables,
    dashboard_figures,
    invoice_receivables_by_currency,
    payment_collected_by_currency,
)
from payments.selectors.exports import INVOICE_EXPORT, PAYMENT_EXPORT, REFUND_EXPORT
from payments.selectors.ledger_checks import invoice_total_mismatches
from payments.selectors.lists import (
    COLLECTED_PAYMENT_STATUSES,
    credit_pack_order_list,
    invoice_list,
    payment_list,
    refund_list,
)
from payments.selectors.live_feed import (
    LiveAudience,
    PaymentLiveFilters,
    payment_live_audience,
    payment_live_get,
    payment_live_snapshot,
)
from payments.selectors.payment_details import payment_credit_pack_orders, payment_detail_list
from payments.selectors.provider_accounts import (
    HAS_SAVED_METHOD,
    PROVIDER_ACCOUNTS,
    customer_has_payment_method,
    provider_account_by_reference,
    provider_account_for_charge,
    provider_account_get,
    row_has_saved_payment_method,
    saved_payment_method_exists,
)
from payments.selectors.refunds import IN_FLIGHT_REFUND_STATUSES, payment_refunds_in_flight

__all__ = [
    "INVOICE_EXPORT",
    "PAYMENT_EXPORT",
    "REFUND_EXPORT",
    "COLLECTED_PAYMENT_STATUSES",
    "DASHBOARD_COLLECTED_DAYS",
    "Collected",
    "credit_pack_order_list",
    "DashboardFigures",
    "IN_FLIGHT_REFUND_STATUSES",
    "HAS_SAVED_METHOD",
    "LiveAudience",
    "PROVIDER_ACCOUNTS",
    "PaymentLiveFilters",
    "Receivables",
    "customer_has_payment_method",
    "dashboard_figures",
    "invoice_list",
    "invoice_receivables_by_currency",
    "invoice_total_mismatches",
    "payment_collected_by_currency",
    "payment_credit_pack_orders",
    "payment_detail_list",
    "payment_list",
    "refund_list",
    "payment_refunds_in_flight",
    "provider_account_by_reference",
    "provider_account_for_charge",
    "provider_account_get",
    "row_has_saved_payment_method",
    "saved_payment_method_exists",
    "payment_live_audience",
    "payment_live_get",
    "payment_live_snapshot",
]
