"""Credit packs bought on account: placed and canceled by services, billed by the next renewal, granted
when that invoice is paid."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_project.tests.threads import race
from core.audit import Actor
from core.exceptions import IllegalTransition, InvalidOperation
from credits.models import CreditLedgerEntry
from credits.selectors import credit_balance_get
from payments.billing.common import RUN_ACTOR
from payments.billing.lines import catalog_load
from payments.billing.preview import invoice_preview
from payments.billing.renewals import RENEWALS, renewal_batch
from payments.billing.run import billing_run
from payments.models import CreditPackOrder, CreditPackOrderStatus, Invoice, InvoiceLine, InvoiceLineKind
from payments.services import invoice_mark_paid
from payments.services.credit_pack_orders import credit_pack_order_cancel, credit_pack_order_place
from payments.services.paid_invoice_effects import credit_pack_orders_fulfill
from payments.tests.conftest import T0, make_due_subscription
from subscriptions.models import SubscriptionStatus
from subscriptions.tests.factories import CustomerFactory, PlanFactory

FEB_28 = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
MAR_31 = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
STAFF = Actor.system("test")


def _order(sub, pack="credits-100", placed=T0 + timedelta(days=3)):
    """An order placed at `placed` (inside the subscription's first period unless told otherwise)."""
    order = credit_pack_order_place(customer=sub.customer, pack=pack, actor=STAFF)
    CreditPackOrder.objects.filter(pk=order.pk).update(created_at=placed)
    order.refresh_from_db()
    return order


@pytest.mark.django_db
class TestPlace:
    def test_price_and_credits_come_from_the_catalog_in_the_customers_currency(self):
        sub = make_due_subscription(customer=CustomerFactory(user=None, currency="GBP"))
        order = credit_pack_order_place(customer=sub.customer, pack="credits-500", actor=STAFF)
        assert (order.pack_code, order.credits, order.amount, order.currency) == ("credits-500", 500, 1800, "GBP")
        assert order.status == CreditPackOrderStatus.PENDING and order.invoice_id is None
        assert order.actor_label == "system:test"

    def test_a_currency_the_pack_is_not_sold_in_is_refused(self):
        sub = make_due_subscription(customer=CustomerFactory(user=None, currency="JPY"))
        with pytest.raises(InvalidOperation) as caught:
            credit_pack_order_place(customer=sub.customer, pack="credits-100", actor=STAFF)
        assert caught.value.code == "unknown_credit_pack"
        assert not CreditPackOrder.objects.exists()

    @pytest.mark.parametrize("status", [SubscriptionStatus.PAUSED, SubscriptionStatus.CANCELED])
    def test_a_customer_without_a_renewing_subscription_is_refused(self, status):
        sub = make_due_subscription(status=status)
        with pytest.raises(InvalidOperation) as caught:
            credit_pack_order_place(customer=sub.customer, pack="credits-100", actor=STAFF)
        assert caught.value.code == "no_renewal_to_bill"
        assert "next renewal" in caught.value.message

    def test_a_customer_with_no_subscription_at_all_is_refused(self):
        with pytest.raises(InvalidOperation, match="no live subscription"):
            credit_pack_order_place(customer=CustomerFactory(user=None), pack="credits-100", actor=STAFF)

    def test_the_database_refuses_a_non_positive_price(self):
        from django.db import IntegrityError, transaction
        sub = make_due_subscription()
        with pytest.raises(IntegrityError), transaction.atomic():
            CreditPackOrder.objects.create(customer=sub.customer, pack_code="x", credits=1, amount=0, currency="USD")


@pytest.mark.django_db
class TestCancel:
    def test_a_pending_order_is_canceled_and_never_billed(self):
        sub = make_due_subscription(plan=PlanFactory(amount=1000))
        order = credit_pack_order_cancel(order=_order(sub), actor=STAFF)
        assert order.status == CreditPackOrderStatus.CANCELED
        billing_run(as_of=FEB_28)
        invoice = Invoice.objects.get(subscription=sub)
        assert not invoice.lines.filter(kind=InvoiceLineKind.CREDIT_PACK).exists()
        assert invoice.total == 1000

    def test_an_invoiced_order_cannot_be_canceled(self):
        sub = make_due_subscription()
        order = _order(sub)
        billing_run(as_of=FEB_28)
        with pytest.raises(IllegalTransition):
            credit_pack_order_cancel(order=order, actor=STAFF)
        order.refresh_from_db()
        assert order.status == CreditPackOrderStatus.INVOICED


@pytest.mark.django_db
class TestRenewal:
    def test_renewal_invoice_bills_each_pending_order_once_even_when_run_twice(self):
        sub = make_due_subscription(plan=PlanFactory(amount=1000))
        small, big = _order(sub, "credits-100"), _order(sub, "credits-500")
        first = billing_run(as_of=FEB_28)
        second = billing_run(as_of=FEB_28)

        invoice = Invoice.objects.get(subscription=sub)
        packs = list(invoice.lines.filter(kind=InvoiceLineKind.CREDIT_PACK).order_by("id"))
        assert [(line.amount, line.credits, line.metadata["credit_pack_order"]) for line in packs] == [
            (500, 100, small.pk), (2000, 500, big.pk)]
        assert invoice.total == 1000 + 500 + 2000
        assert set(CreditPackOrder.objects.values_list("status", "invoice_id")) == {
            (CreditPackOrderStatus.INVOICED, invoice.pk)}
        assert first.counts["credit_packs_invoiced"] == 2 and "credit_packs_invoiced" not in second.counts
        assert InvoiceLine.objects.filter(kind=InvoiceLineKind.CREDIT_PACK).count() == 2

    def test_orders_placed_after_the_renewal_instant_wait_for_the_next_renewal(self):
        sub = make_due_subscription(plan=PlanFactory(amount=1000))
        later = _order(sub, placed=FEB_28 + timedelta(days=1))
        billing_run(as_of=FEB_28)
        later.refresh_from_db()
        assert later.status == CreditPackOrderStatus.PENDING
        billing_run(as_of=MAR_31)
        later.refresh_from_db()
        assert later.invoice.period_start == MAR_31

    def test_free_plan_renewal_issues_an_invoice_when_orders_are_pending(self):
        sub = make_due_subscription(plan=PlanFactory(amount=0))
        order = _order(sub)
        billing_run(as_of=FEB_28)
        invoice = Invoice.objects.get(subscription=sub)
        assert [line.kind for line in invoice.lines.all()] == [InvoiceLineKind.CREDIT_PACK]
        assert invoice.total == order.amount == 500

    def test_final_invoice_of_a_subscription_ending_bills_its_pending_orders(self):
        sub = make_due_subscription(plan=PlanFactory(amount=1000), cancel_at_period_end=True)
        order = _order(sub)
        billing_run(as_of=FEB_28)
        order.refresh_from_db()
        assert order.status == CreditPackOrderStatus.INVOICED
        assert order.invoice.metadata["final"] is True and order.invoice.total == 500

    def test_paying_the_renewal_invoice_grants_the_credits_once(self):
        sub = make_due_subscription(plan=PlanFactory(amount=1000, credits_per_period=0))
        order = _order(sub, "credits-500")
        billing_run(as_of=FEB_28)
        invoice = Invoice.objects.get(subscription=sub)
        assert credit_balance_get(customer=sub.customer) == 0  # billed, not yet paid

        invoice_mark_paid(invoice=invoice, actor=STAFF)
        invoice.refresh_from_db()
        assert credit_pack_orders_fulfill(invoice=invoice, actor=STAFF) == []  # a replay grants nothing

        order.refresh_from_db()
        assert order.status == CreditPackOrderStatus.FULFILLED
        assert credit_balance_get(customer=sub.customer) == 500
        assert CreditLedgerEntry.objects.filter(customer=sub.customer).count() == 1

    def test_a_payment_settling_the_invoice_grants_the_credits_too(self):
        from payments.providers.manual.services import payment_record_manual
        sub = make_due_subscription(plan=PlanFactory(amount=1000, credits_per_period=0))
        _order(sub, "credits-100")
        billing_run(as_of=FEB_28)
        invoice = Invoice.objects.get(subscription=sub)
        payment_record_manual(customer=sub.customer, invoice=invoice, amount=invoice.amount_due,
                              method="bank_transfer", reference="REF-1", actor=STAFF)
        assert credit_balance_get(customer=sub.customer) == 100
        assert CreditPackOrder.objects.get().status == CreditPackOrderStatus.FULFILLED

    def test_preview_shows_the_pending_orders(self):
        sub = make_due_subscription(plan=PlanFactory(amount=1000))
        _order(sub, "credits-100")
        credit_pack_order_cancel(order=_order(sub, "credits-500"), actor=STAFF)
        preview = invoice_preview(customer=sub.customer)
        assert [(line.spec.kind, line.amount) for line in preview.lines] == [
            (InvoiceLineKind.SUBSCRIPTION, 1000), (InvoiceLineKind.CREDIT_PACK, 500)]
        assert preview.total == 1500

    def test_renewal_batch_query_count_does_not_grow_with_the_number_of_orders(self):
        plan = PlanFactory(amount=1000)
        catalog = catalog_load()
        queries = {}
        for size, per_sub in ((2, 0), (2, 1), (20, 3)):
            anchor = T0 + timedelta(seconds=size * 10 + per_sub)
            subs = [make_due_subscription(plan=plan, anchor=anchor) for _ in range(size)]
            for sub in subs:
                for _ in range(per_sub):
                    _order(sub, placed=anchor + timedelta(days=1))
            with CaptureQueriesContext(connection) as context:
                counts = renewal_batch(step=RENEWALS, as_of=subs[0].current_period_end, batch_size=size,
                                       actor=RUN_ACTOR, catalog=catalog)
            assert counts.counts.get("credit_packs_invoiced", 0) == size * per_sub
            queries[(size, per_sub)] = len(context)
        # Billing orders costs one UPDATE and one insert of their audit rows for the whole batch, however many
        # orders and subscriptions.
        assert queries[(2, 1)] == queries[(20, 3)] == queries[(2, 0)] + 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_bill_each_order_exactly_once():
    plan = PlanFactory(amount=1000)
    orders = []
    for _ in range(30):
        sub = make_due_subscription(plan=plan)
        orders += [_order(sub, "credits-100"), _order(sub, "credits-500")]
    errors = race([lambda: billing_run(as_of=FEB_28, batch_size=4)] * 2).errors
    assert errors == []
    lines = InvoiceLine.objects.filter(kind=InvoiceLineKind.CREDIT_PACK)
    assert sorted(line.metadata["credit_pack_order"] for line in lines) == sorted(o.pk for o in orders)
    assert not CreditPackOrder.objects.exclude(status=CreditPackOrderStatus.INVOICED).exists()
    for order in CreditPackOrder.objects.select_related("invoice"):
        assert order.invoice.lines.filter(metadata__credit_pack_order=order.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_the_renewal_either_wins_or_finds_the_order_invoiced():
    sub = make_due_subscription(plan=PlanFactory(amount=1000))
    order = _order(sub)
    outcomes = []

    def cancel():
        try:
            credit_pack_order_cancel(order=order, actor=STAFF)
            outcomes.append("canceled")
        except IllegalTransition:
            outcomes.append("too late")

    errors = race([cancel, lambda: billing_run(as_of=FEB_28)]).errors
    assert errors == []
    order.refresh_from_db()
    billed = InvoiceLine.objects.filter(kind=InvoiceLineKind.CREDIT_PACK).count()
    if outcomes == ["canceled"]:
        assert order.status == CreditPackOrderStatus.CANCELED and billed == 0
    else:
        assert outcomes == ["too late"]
        assert order.status == CreditPackOrderStatus.INVOICED and billed == 1


@pytest.mark.django_db
def test_billing_preview_command_prints_the_credit_pack_line():
    from io import StringIO

    from django.core.management import call_command

    sub = make_due_subscription(plan=PlanFactory(amount=0))
    _order(sub, "credits-500")
    out = StringIO()
    call_command("billing", "preview", str(sub.customer.pk), stdout=out)
    printed = out.getvalue()
    assert "Credit pack credits-500: 500 credits" in printed
    assert "renews without an invoice" not in printed
    assert CreditPackOrder.objects.get().status == CreditPackOrderStatus.PENDING  # nothing written
