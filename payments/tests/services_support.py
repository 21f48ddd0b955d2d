"""What the payments service tests share: a fixed clock, a system actor, and invoices built and finalized
through the services themselves."""

from datetime import UTC, datetime
from decimal import Decimal

from core.audit import Actor
from payments.models import InvoiceLineKind, InvoiceStatus, InvoiceStatusChange, PaymentStatus, PaymentStatusChange
from payments.services import LineSpec, invoice_create, invoice_finalize
from subscriptions.models import SubscriptionStatus
from subscriptions.tests.factories import CustomerFactory

IS, P, S = InvoiceStatus, PaymentStatus, SubscriptionStatus
NOW = datetime(2025, 4, 1, 9, tzinfo=UTC)
ACTOR = Actor.system("test")


def line(amount, quantity=1, kind=InvoiceLineKind.ADJUSTMENT):
    return LineSpec(kind=kind, description="line", unit_amount=Decimal(amount), quantity=Decimal(quantity))


def open_invoice(customer=None, amount=1000, now=NOW, **fields):
    invoice = invoice_create(customer=customer or CustomerFactory(), lines=[line(amount)], **fields)
    return invoice_finalize(invoice=invoice, actor=ACTOR, now=now)


def statuses(invoice):
    return list(InvoiceStatusChange.objects.filter(invoice=invoice).order_by("id")
                .values_list("from_status", "to_status"))


def payment_statuses(payment):
    return list(PaymentStatusChange.objects.filter(payment=payment).order_by("id")
                .values_list("from_status", "to_status"))

