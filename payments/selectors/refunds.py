"""Reads of refunds."""

from django.db.models import Sum

from payments.models import Refund, RefundStatus

# Refunds that hold part of their payment's refundable amount until they are settled: a card refund
# committed before Stripe was asked, and one Stripe reports as still on its way.
IN_FLIGHT_REFUND_STATUSES = (RefundStatus.REQUESTED, RefundStatus.PENDING)


def payment_refunds_in_flight(*, payment_id: int) -> int:
    """What refunds not yet settled hold of a payment's refundable amount."""
    held = Refund.objects.filter(payment_id=payment_id, status__in=IN_FLIGHT_REFUND_STATUSES).aggregate(
        total=Sum("amount"))["total"]
    return held or 0
