"""What the invoice, payment and refund CSV exports write (admin actions and the API's export endpoints).
Provider-specific ids are left out: rails keep their own ids, and these files are for finance."""

from core.exports import ExportSpec

INVOICE_EXPORT = ExportSpec(name="invoices", columns=(
    ("id", "id"), ("number", "number"), ("customer_id", "customer_id"), ("customer_email", "customer__email"),
    ("subscription_id", "subscription_id"), ("billing_reason", "billing_reason"), ("status", "status"),
    ("currency", "currency"), ("subtotal", "subtotal"), ("total", "total"), ("amount_paid", "amount_paid"),
    ("amount_due", "amount_due"), ("period_start", "period_start"), ("period_end", "period_end"),
    ("issued_at", "issued_at"), ("due_date", "due_date"), ("paid_at", "paid_at"), ("voided_at", "voided_at"),
))
PAYMENT_EXPORT = ExportSpec(name="payments", columns=(
    ("id", "id"), ("customer_id", "customer_id"), ("invoice_id", "invoice_id"), ("invoice_number", "invoice__number"),
    ("method", "method"), ("status", "status"), ("currency", "currency"), ("amount", "amount"),
    ("amount_refunded", "amount_refunded"), ("reference", "reference"), ("failure_code", "failure_code"),
    ("created_at", "created_at"), ("succeeded_at", "succeeded_at"),
))
REFUND_EXPORT = ExportSpec(name="refunds", columns=(
    ("id", "id"), ("payment_id", "payment_id"), ("customer_id", "payment__customer_id"),
    ("payment_method", "payment__method"), ("currency", "currency"), ("amount", "amount"), ("status", "status"),
    ("created_at", "created_at"), ("actor", "actor_label"), ("reason", "reason"),
))
