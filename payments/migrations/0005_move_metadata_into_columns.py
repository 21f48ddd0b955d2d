"""Moves system state out of staff-editable metadata into the columns 0004 added: the credits a credit pack
line sells (Checkout invoices kept them in Invoice.metadata["credits"], renewal lines in their line
metadata), and the collection attempt key of off-session payments (Payment.metadata["collection_key"]).
The invoice's list of billed orders (metadata["credit_pack_orders"]) goes too: CreditPackOrder.invoice
already says it."""

from django.db import migrations

_INVOICE_KEYS = ("credits", "credit_pack_orders")


def _positive(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def forwards(apps, schema_editor):
    Invoice = apps.get_model("payments", "Invoice")
    InvoiceLine = apps.get_model("payments", "InvoiceLine")
    Payment = apps.get_model("payments", "Payment")
    for line in InvoiceLine.objects.filter(kind="credit_pack", credits__isnull=True).select_related("invoice"):
        credits = _positive(line.metadata.get("credits"))
        if credits is None and line.invoice.billing_reason == "credit_pack":
            credits = _positive(line.invoice.metadata.get("credits"))
        if credits is not None:
            line.credits = credits
            line.save(update_fields=["credits"])
    for invoice in Invoice.objects.filter(metadata__has_any_keys=list(_INVOICE_KEYS)):
        invoice.metadata = {k: v for k, v in invoice.metadata.items() if k not in _INVOICE_KEYS}
        invoice.save(update_fields=["metadata"])
    taken = set(Payment.objects.filter(collection_key__isnull=False).values_list("collection_key", flat=True))
    for payment in Payment.objects.filter(metadata__has_key="collection_key", collection_key__isnull=True).order_by("pk"):
        key = str(payment.metadata.pop("collection_key"))[:64]
        # Metadata is a staff note: a key copied onto a second payment stays with the first one only.
        if key not in taken:
            payment.collection_key = key
            taken.add(key)
        payment.save(update_fields=["collection_key", "metadata"])


def backwards(apps, schema_editor):
    Invoice = apps.get_model("payments", "Invoice")
    Payment = apps.get_model("payments", "Payment")
    for invoice in Invoice.objects.filter(billing_reason="credit_pack"):
        credits = sum(line.credits or 0 for line in invoice.lines.all())
        if credits:
            invoice.metadata = {**invoice.metadata, "credits": credits}
            invoice.save(update_fields=["metadata"])
    for payment in Payment.objects.filter(collection_key__isnull=False):
        payment.metadata = {**payment.metadata, "collection_key": payment.collection_key}
        payment.save(update_fields=["metadata"])


class Migration(migrations.Migration):
    dependencies = [("payments", "0004_credit_pack_order_audit_line_credits_collection_key")]

    operations = [migrations.RunPython(forwards, backwards)]
