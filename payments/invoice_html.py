"""The printable invoice: one template, rendered with amounts already formatted by `format_money`
(so the page never does money arithmetic of its own)."""

from django.template.loader import render_to_string

from core.money import format_money
from payments.models import Invoice


def invoice_render_html(*, invoice: Invoice) -> str:
    currency = invoice.currency
    lines = [
        {"line": line, "quantity": f"{line.quantity.normalize():f}",
         "unit_amount": f"{line.unit_amount.normalize():f}", "amount": format_money(line.amount, currency)}
        for line in invoice.lines.select_related("meter").order_by("id")
    ]
    payments = [{"payment": p, "amount": format_money(p.amount, p.currency)}
                for p in invoice.payments.order_by("created_at", "id")]
    return render_to_string("payments/invoice.html", {
        "invoice": invoice,
        "customer": invoice.customer,
        "lines": lines,
        "payments": payments,
        "subtotal": format_money(invoice.subtotal, currency),
        "total": format_money(invoice.total, currency),
        "amount_paid": format_money(invoice.amount_paid, currency),
        "amount_due": format_money(invoice.amount_due, currency),
    })
