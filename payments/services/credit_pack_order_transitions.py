"""Status moves of credit pack orders, one at a time or for a whole batch: each refuses illegal moves and
writes a CreditPackOrderStatusChange row, as `invoice_transition` and `payment_transition` do.

Kept apart from payments.services.credit_pack_orders (which imports the Checkout catalog) so the billing
run and the paid-invoice effects can call it without importing the Stripe services."""

from django.db.models import Case, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import Actor
from core.bulk import array_of
from core.exceptions import IllegalTransition
from payments.models import CreditPackOrder, CreditPackOrderStatus, CreditPackOrderStatusChange

OS = CreditPackOrderStatus

ALLOWED_CREDIT_PACK_ORDER_TRANSITIONS: dict[str, set[str]] = {
    OS.PENDING: {OS.INVOICED, OS.CANCELED},
    OS.INVOICED: {OS.FULFILLED},
    OS.FULFILLED: set(),
    OS.CANCELED: set(),
}


def credit_pack_order_transition(*, order: CreditPackOrder, to_status: str, actor: Actor,
                                 reason: str = "") -> CreditPackOrder:
    """Move a locked order to `to_status`, or raise IllegalTransition."""
    from_status = order.status
    if to_status not in ALLOWED_CREDIT_PACK_ORDER_TRANSITIONS[from_status]:
        raise IllegalTransition(_("A %(from_status)s credit pack order cannot become %(to_status)s.")
                                % {"from_status": from_status, "to_status": to_status},
                                extra={"from": from_status, "to": to_status})
    order.status = to_status
    order.save(update_fields=["status", "updated_at"])
    change = CreditPackOrderStatusChange(order=order, from_status=from_status, to_status=to_status,
                                         reason=reason[:500])
    change.stamp(actor)
    change.save()
    return order


def credit_pack_orders_transition_many(*, orders: list[CreditPackOrder], to_status: str, actor: Actor,
                                       reason: str = "", invoice_ids: dict[int, int] | None = None) -> list[int]:
    """`credit_pack_order_transition` for a batch of locked orders, in two statements whatever its size: one
    UPDATE, one insert of the audit rows. Orders whose status may not become `to_status` are refused (left
    as they are, no audit row; the UPDATE checks the status again). `invoice_ids` (order id -> invoice id)
    names the invoice that bills each order, set in the same UPDATE. Returns the ids that moved."""
    legal = [order for order in orders if to_status in ALLOWED_CREDIT_PACK_ORDER_TRANSITIONS[order.status]]
    if not legal:
        return []
    moved = [order.pk for order in legal]
    legal_from = [status for status, allowed in ALLOWED_CREDIT_PACK_ORDER_TRANSITIONS.items() if to_status in allowed]
    changed = {"status": to_status, "updated_at": timezone.now()}
    if invoice_ids:
        # Each order names its own invoice; a renewal batch bills few orders, so a CASE is cheap here.
        changed["invoice_id"] = Case(*[When(pk=pk, then=Value(invoice_ids[pk])) for pk in moved])
    CreditPackOrder.objects.filter(pk__in=array_of(moved), status__in=legal_from).update(**changed)
    changes = []
    for order in legal:
        change = CreditPackOrderStatusChange(order_id=order.pk, from_status=order.status, to_status=to_status,
                                             reason=reason[:500])
        change.stamp(actor)
        changes.append(change)
        order.status = to_status
    CreditPackOrderStatusChange.objects.bulk_create(changes)
    return moved
