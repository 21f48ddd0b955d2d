"""Reads behind the live payment feed (WebSocket): who may see which payments, the snapshot a
subscription starts from, and the payment a broadcast describes."""

from dataclasses import dataclass

from django.db.models import QuerySet

from payments.models import Payment
from payments.selectors.lists import payment_list
from subscriptions.models import Customer


@dataclass(frozen=True)
class LiveAudience:
    """Whose payments one WebSocket connection may see, decided once when it authenticates."""

    is_staff: bool
    # The customer a non-staff user bills as; None for staff, who see every customer.
    customer_id: int | None = None


@dataclass(frozen=True)
class PaymentLiveFilters:
    """What a live subscription asked for. The snapshot applies it in SQL; every event is matched in
    memory against the few fields the broadcast carries, so delivering an event costs no query."""

    customer_id: int | None = None
    invoice_id: int | None = None
    # Empty means any.
    statuses: frozenset[str] = frozenset()
    methods: frozenset[str] = frozenset()

    def apply(self, payments: QuerySet[Payment]) -> QuerySet[Payment]:
        if self.customer_id is not None:
            payments = payments.filter(customer_id=self.customer_id)
        if self.invoice_id is not None:
            payments = payments.filter(invoice_id=self.invoice_id)
        if self.statuses:
            payments = payments.filter(status__in=self.statuses)
        if self.methods:
            payments = payments.filter(method__in=self.methods)
        return payments

    def matches(self, fields: dict) -> bool:
        """`fields` is the "match" part of a broadcast: customer, invoice, status and method."""
        return ((self.customer_id is None or fields["customer"] == self.customer_id)
                and (self.invoice_id is None or fields["invoice"] == self.invoice_id)
                and (not self.statuses or fields["status"] in self.statuses)
                and (not self.methods or fields["method"] in self.methods))


def payment_live_audience(*, user) -> LiveAudience | None:
    """Staff allowed to view payments see all of them; a customer's user sees its own; anyone else
    nothing (None)."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff and user.has_perm("payments.view_payment"):
        return LiveAudience(is_staff=True)
    customer_id = Customer.objects.filter(user=user).values_list("pk", flat=True).first()
    if customer_id is None:
        return None
    return LiveAudience(is_staff=False, customer_id=customer_id)


def payment_live_snapshot(*, audience: LiveAudience, filters: PaymentLiveFilters,
                          limit: int) -> tuple[list[Payment], int]:
    """The newest `limit` payments matching `filters` that `audience` may see, and how many match."""
    payments = filters.apply(payment_list())
    if not audience.is_staff:
        payments = payments.filter(customer_id=audience.customer_id)
    return list(payments[:limit]), payments.count()


def payment_live_get(*, payment_id: int) -> Payment:
    return payment_list().get(pk=payment_id)
