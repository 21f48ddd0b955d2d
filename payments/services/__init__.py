"""Writes for invoices, payments and refunds, and the flows that span apps (starting a subscription,
changing its plan). Status moves go through `invoice_transition`, `payment_transition` and
`refund_transition` only.

The modules depend on each other in one direction only, lowest first:
paid_invoice_effects <- invoices <- payments <- refunds, and invoices <- subscription_flows, one_off_invoices.
Manual payments are the manual rail's write (payments.providers.manual.services.payment_record_manual).
Callers import from `payments.services`; every public name stays available here."""

from payments.services.invoices import (
    ALLOWED_INVOICE_TRANSITIONS,
    ISSUED_REASON,
    NOTHING_DUE_REASON,
    IssueTerms,
    LineSpec,
    invoice_amount_due,
    invoice_apply_payment,
    invoice_create,
    invoice_finalize,
    invoice_issue_terms,
    invoice_line_amount,
    invoice_lock,
    invoice_mark_paid,
    invoice_number_format,
    invoice_number_next,
    invoice_numbers_take,
    invoice_settle,
    invoice_total,
    invoice_totals_recompute,
    invoice_transition,
    invoice_void,
)
from payments.services.one_off_invoices import (
    ONE_OFF_MAX_LINES,
    OneOffLine,
    invoice_one_off_check,
    invoice_one_off_create,
)
from payments.services.paid_invoice_effects import credit_pack_fulfill, subscription_activate_after_payment
from payments.services.payments import (
    ALLOWED_PAYMENT_TRANSITIONS,
    payment_counted,
    payment_create,
    payment_lock,
    payment_transition,
)
from payments.services.provider_accounts import (
    provider_account_default_payment_method_set,
    provider_account_reference_set,
)
from payments.services.refunds import (
    ALLOWED_REFUND_TRANSITIONS,
    payment_refund,
    payment_refund_apply,
    refund_counted,
    refund_id_from_idempotency_key,
    refund_idempotency_key,
    refund_transition,
)
from payments.services.subscription_flows import (
    PRORATION_QUANTUM,
    PlanChange,
    plan_period_line,
    subscription_change_plan,
    subscription_start,
)

__all__ = [
    "ALLOWED_INVOICE_TRANSITIONS",
    "ALLOWED_PAYMENT_TRANSITIONS",
    "ALLOWED_REFUND_TRANSITIONS",
    "ISSUED_REASON",
    "NOTHING_DUE_REASON",
    "ONE_OFF_MAX_LINES",
    "PRORATION_QUANTUM",
    "IssueTerms",
    "LineSpec",
    "OneOffLine",
    "PlanChange",
    "credit_pack_fulfill",
    "invoice_amount_due",
    "invoice_apply_payment",
    "invoice_create",
    "invoice_finalize",
    "invoice_issue_terms",
    "invoice_line_amount",
    "invoice_lock",
    "invoice_mark_paid",
    "invoice_one_off_check",
    "invoice_one_off_create",
    "invoice_number_format",
    "invoice_number_next",
    "invoice_numbers_take",
    "invoice_settle",
    "invoice_total",
    "invoice_totals_recompute",
    "invoice_transition",
    "invoice_void",
    "payment_counted",
    "payment_create",
    "payment_lock",
    "payment_refund",
    "payment_refund_apply",
    "payment_transition",
    "plan_period_line",
    "provider_account_default_payment_method_set",
    "provider_account_reference_set",
    "refund_counted",
    "refund_id_from_idempotency_key",
    "refund_idempotency_key",
    "refund_transition",
    "subscription_activate_after_payment",
    "subscription_change_plan",
    "subscription_start",
]
