"""Credit pack order status moves: one function (and its bulk variant) refuses illegal moves and writes the
audit row, whichever door moves the order."""

from datetime import timedelta

import pytest

from core.audit import Actor
from core.exceptions import IllegalTransition
from payments.billing.run import billing_run
from payments.models import CreditPackOrder, CreditPackOrderStatus, CreditPackOrderStatusChange, Invoice
from payments.services import invoice_mark_paid
from payments.services.credit_pack_order_transitions import (
    credit_pack_order_transition,
    credit_pack_orders_transition_many,
)
from payments.services.credit_pack_orders import credit_pack_order_cancel, credit_pack_order_place
from payments.tests.conftest import T0, make_due_subscription
from subscriptions.tests.factories import PlanFactory

ACTOR = Actor.system("test")
OS = CreditPackOrderStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def packs(settings):
    settings.CREDIT_PACKS = {"credits-100": {"credits": 100, "prices": {"USD": 500}}}


def _order(sub) -> CreditPackOrder:
    order = credit_pack_order_place(customer=sub.customer, pack="credits-100", actor=ACTOR)
    CreditPackOrder.objects.filter(pk=order.pk).update(created_at=T0 + timedelta(days=1))
    return order


def _trail(order) -> list[tuple[str, str, str]]:
    return list(CreditPackOrderStatusChange.objects.filter(order=order).order_by("id")
                .values_list("from_status", "to_status", "actor_label"))


def test_an_order_billed_then_paid_leaves_an_audit_row_for_each_move():
    sub = make_due_subscription(plan=PlanFactory(amount=1000))
    order = _order(sub)
    billing_run(as_of=sub.current_period_end)
    invoice_mark_paid(invoice=Invoice.objects.get(subscription=sub), actor=Actor.system("staff"))

    assert _trail(order) == [(OS.PENDING, OS.INVOICED, "system:billing-run"),
                             (OS.INVOICED, OS.FULFILLED, "system:staff")]


def test_a_cancel_is_audited_and_a_second_one_refused():
    order = _order(make_due_subscription(plan=PlanFactory(amount=1000)))
    credit_pack_order_cancel(order=order, actor=ACTOR)

    with pytest.raises(IllegalTransition):
        credit_pack_order_cancel(order=order, actor=ACTOR)
    assert _trail(order) == [(OS.PENDING, OS.CANCELED, "system:test")]


@pytest.mark.parametrize(("start", "to_status"), [(OS.PENDING, OS.FULFILLED), (OS.CANCELED, OS.INVOICED),
                                                  (OS.FULFILLED, OS.CANCELED)])
def test_illegal_moves_are_refused_one_at_a_time_and_in_bulk(start, to_status):
    order = _order(make_due_subscription(plan=PlanFactory(amount=1000)))
    CreditPackOrder.objects.filter(pk=order.pk).update(status=start, invoice=None if start != OS.FULFILLED else
                                                       Invoice.objects.create(customer=order.customer, currency="USD"))
    order.refresh_from_db()

    with pytest.raises(IllegalTransition):
        credit_pack_order_transition(order=order, to_status=to_status, actor=ACTOR)
    assert credit_pack_orders_transition_many(orders=[order], to_status=to_status, actor=ACTOR) == []
    order.refresh_from_db()
    assert order.status == start and not CreditPackOrderStatusChange.objects.exists()


def test_the_bulk_variant_moves_only_the_legal_ones_in_two_statements(django_assert_num_queries):
    plan = PlanFactory(amount=1000)
    pending = [_order(make_due_subscription(plan=plan)) for _ in range(3)]
    credit_pack_order_cancel(order=pending[0], actor=ACTOR)
    orders = list(CreditPackOrder.objects.order_by("pk"))

    with django_assert_num_queries(2):
        moved = credit_pack_orders_transition_many(orders=orders, to_status=OS.CANCELED, actor=ACTOR, reason="bulk")

    assert moved == [o.pk for o in pending[1:]]
    assert set(CreditPackOrder.objects.values_list("status", flat=True)) == {OS.CANCELED}
    assert CreditPackOrderStatusChange.objects.filter(reason="bulk").count() == 2
