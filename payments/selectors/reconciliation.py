"""Our side of a reconciliation with one payment rail: its payments and refunds in a window, plus those
the provider names by our ids (a payment made before the window may be refunded inside it)."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from payments.models import Payment, Refund


@dataclass(frozen=True)
class OurRows:
    payments: list[Payment]
    refunds: list[Refund]


def reconcile_rows(*, provider: str, since: datetime, until: datetime, payment_ids: Collection[int] = (),
                   invoice_ids: Collection[int] = (), refund_ids: Collection[int] = (),
                   references: Collection[str] = ()) -> OurRows:
    """The rail's payments (by `Payment.provider`) created in [since, until) or named by id, invoice or the
    provider's charge id, and the refunds of those payments created in the window or named."""
    named = (Q(pk__in=list(payment_ids)) | Q(invoice_id__in=list(invoice_ids)) | Q(refunds__pk__in=list(refund_ids))
             | Q(provider_charge_id__in=list(references)) | Q(refunds__provider_refund_id__in=list(references)))
    payments = list(Payment.objects.filter(provider=provider)
                    .filter(Q(created_at__gte=since, created_at__lt=until) | named).distinct().order_by("pk"))
    refunds = list(Refund.objects.select_related("payment")
                   .filter(payment__in=[payment.pk for payment in payments])
                   .filter(Q(created_at__gte=since, created_at__lt=until) | Q(pk__in=list(refund_ids))
                           | Q(provider_refund_id__in=list(references)))
                   .order_by("pk"))
    return OurRows(payments=payments, refunds=refunds)
