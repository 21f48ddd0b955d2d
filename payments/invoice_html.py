"""The printable invoice: one template, rendered in the language of the customer (or one a request asks
for), with amounts formatted by `format_money` in that language (so the page never does money arithmetic
of its own, and an invoice printed in Arabic or English shows the same figures)."""

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from core.l10n import format_date, format_number, localized_name
from core.money import format_money
from payments.models import Invoice


def invoice_language(*, invoice: Invoice, requested: str | None = None) -> str:
    """`requested` when it is one of LANGUAGES (a `?language=` or an Accept-Language), else the
    customer's preferred language."""
    supported = {code for code, _name in settings.LANGUAGES}
    if requested:
        code = translation.get_supported_language_variant(requested) if requested else None
        if code in supported:
            return code
    return invoice.customer.preferred_language if invoice.customer.preferred_language in supported \
        else settings.LANGUAGE_CODE


def invoice_render_html(*, invoice: Invoice, language: str | None = None) -> str:
    with translation.override(language or invoice_language(invoice=invoice)):
        return _invoice_render(invoice=invoice)


def _invoice_render(*, invoice: Invoice) -> str:
    currency = invoice.currency
    lines = [
        {"line": line, "quantity": format_number(line.quantity.normalize()),
         "unit_amount": format_number(line.unit_amount.normalize()), "amount": format_money(line.amount, currency),
         "period": _period(line.period_start, line.period_end)}
        for line in invoice.lines.select_related("meter").order_by("id")
    ]
    payments = [{"payment": p, "amount": format_money(p.amount, p.currency), "date": format_date(p.created_at)}
                for p in invoice.payments.order_by("created_at", "id")]
    return render_to_string("payments/invoice.html", {
        "invoice": invoice,
        "customer": invoice.customer,
        "customer_name": localized_name(invoice.customer),
        "lines": lines,
        "payments": payments,
        "issued": format_date(invoice.issued_at),
        "due": format_date(invoice.due_date),
        "period": _period(invoice.period_start, invoice.period_end),
        "subtotal": format_money(invoice.subtotal, currency),
        "total": format_money(invoice.total, currency),
        "amount_paid": format_money(invoice.amount_paid, currency),
        "amount_due": format_money(invoice.amount_due, currency),
    })


def _period(start, end) -> dict | None:
    return {"start": format_date(start), "end": format_date(end)} if start and end else None
