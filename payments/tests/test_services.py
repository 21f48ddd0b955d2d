from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from core.audit import Actor
from core.exceptions import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidOperation,
    PaymentProviderUnavailable,
)
from credits.selectors import credit_balance_get
from payments.models import (
    BillingReason,
    Invoice,
    InvoiceLineKind,
    InvoiceNumberSequence,
    InvoiceStatus,
    InvoiceStatusChange,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PaymentStatusChange,
    Refund,
)
from payments.selectors import invoice_total_mismatches
from payments.services import (
    ALLOWED_INVOICE_TRANSITIONS,
    ALLOWED_PAYMENT_TRANSITIONS,
    LineSpec,
    invoice_create,
    invoice_finalize,
    invoice_line_amount,
    invoice_lock,
    invoice_mark_paid,
    invoice_transition,
    invoice_void,
    payment_lock,
    payment_record_manual,
    payment_refund,
    payment_transition,
    subscription_change_plan,
    subscription_start,
)
from payments.tests.factories import InvoiceFactory, PaymentFactory
from subscriptions.models import SubscriptionEvent, SubscriptionEventKind, SubscriptionStatus
from subscriptions.tests.factories import CustomerFactory, PlanFactory, StaffUserFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

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


# ------------------------------------------------------------------------------------------ amounts


@pytest.mark.parametrize(("quantity", "unit_amount", "amount"), [
    ("1", "999", 999),
    ("3", "0.5", 2),            # 1.5 -> 2
    ("1", "0.5", 1),
    ("12345", "0.04", 494),     # 493.8
    ("0.5", "-999", -500),      # a credit of -499.5 rounds away from zero too
    ("0.5", "2999", 1500),
    ("0", "999", 0),
])
def test_line_amount_is_rounded_once_half_up(quantity, unit_amount, amount):
    assert invoice_line_amount(quantity=Decimal(quantity), unit_amount=Decimal(unit_amount)) == amount


def test_invoice_create_stores_lines_and_totals():
    customer = CustomerFactory(currency="EUR")

    invoice = invoice_create(customer=customer, lines=[line(999), line("0.04", 12345, InvoiceLineKind.USAGE)])

    assert (invoice.status, invoice.number, invoice.currency) == (IS.DRAFT, None, "EUR")
    assert list(invoice.lines.values_list("amount", flat=True)) == [999, 494]
    assert (invoice.subtotal, invoice.total, invoice.amount_due) == (1493, 1493, 1493)


def test_a_credit_larger_than_the_charges_makes_nothing_due():
    invoice = invoice_create(customer=CustomerFactory(), lines=[line(500), line(-800)])

    assert (invoice.subtotal, invoice.total, invoice.amount_due) == (-300, 0, 0)


# ------------------------------------------------------------------------------------------ finalize and numbers


def test_finalize_numbers_opens_and_audits(settings):
    settings.INVOICE_DAYS_UNTIL_DUE = 14
    staff = StaffUserFactory()
    invoice = invoice_create(customer=CustomerFactory(), lines=[line(1000)])

    invoice = invoice_finalize(invoice=invoice, actor=Actor.of_user(staff), now=NOW)

    assert (invoice.status, invoice.number) == (IS.OPEN, "INV-2025-000001")
    assert invoice.issued_at == invoice.next_attempt_at == NOW
    assert invoice.due_date == NOW + timedelta(days=14)
    change = InvoiceStatusChange.objects.get(invoice=invoice)
    assert (change.from_status, change.to_status, change.reason, change.actor) == (IS.DRAFT, IS.OPEN, "finalized",
                                                                                   staff)


def test_finalizing_an_invoice_with_nothing_due_pays_it():
    invoice = invoice_create(customer=CustomerFactory(), lines=[line(0)])

    invoice = invoice_finalize(invoice=invoice, actor=ACTOR, now=NOW)

    assert invoice.status == IS.PAID
    assert invoice.paid_at == NOW
    assert invoice.next_attempt_at is None
    assert statuses(invoice) == [(IS.DRAFT, IS.OPEN), (IS.OPEN, IS.PAID)]


def test_invoice_numbers_are_gapless_per_year():
    customer = CustomerFactory()

    numbers = [open_invoice(customer, now=NOW).number for _ in range(3)]
    next_year = open_invoice(customer, now=datetime(2026, 1, 1, tzinfo=UTC)).number

    assert numbers == ["INV-2025-000001", "INV-2025-000002", "INV-2025-000003"]
    assert next_year == "INV-2026-000001"
    assert dict(InvoiceNumberSequence.objects.values_list("year", "last_number")) == {2025: 3, 2026: 1}


def test_a_rolled_back_finalization_leaves_no_gap():
    customer = CustomerFactory()
    open_invoice(customer)
    doomed = invoice_create(customer=customer, lines=[line(100)])

    with pytest.raises(RuntimeError), transaction.atomic():
        assert invoice_finalize(invoice=doomed, actor=ACTOR, now=NOW).number == "INV-2025-000002"
        raise RuntimeError("the surrounding work failed")

    doomed.refresh_from_db()
    assert (doomed.status, doomed.number) == (IS.DRAFT, None)
    assert open_invoice(customer).number == "INV-2025-000002"


def test_finalizing_twice_is_refused_and_burns_no_number():
    invoice = open_invoice()

    with pytest.raises(IllegalTransition):
        invoice_finalize(invoice=invoice, actor=ACTOR, now=NOW + timedelta(days=1))

    invoice.refresh_from_db()
    assert (invoice.number, invoice.issued_at) == ("INV-2025-000001", NOW)
    assert InvoiceNumberSequence.objects.get(year=2025).last_number == 1


@pytest.mark.parametrize(("from_status", "to_status"), [
    (f, t) for f in IS.values for t in IS.values if t not in ALLOWED_INVOICE_TRANSITIONS[f]
])
def test_illegal_invoice_transitions_are_refused_and_change_nothing(from_status, to_status):
    invoice = InvoiceFactory(status=from_status, number=None if from_status == IS.DRAFT else "INV-X")

    with pytest.raises(IllegalTransition):
        invoice_transition(invoice=invoice_lock(invoice_id=invoice.pk), to_status=to_status, actor=ACTOR)

    invoice.refresh_from_db()
    assert invoice.status == from_status
    assert statuses(invoice) == []


# ------------------------------------------------------------------------------------------ void and mark paid


def test_void_an_open_invoice():
    invoice = open_invoice()

    invoice_void(invoice=invoice, actor=ACTOR, reason="issued in error", now=NOW + timedelta(hours=1))

    invoice.refresh_from_db()
    assert (invoice.status, invoice.voided_at, invoice.next_attempt_at) == (IS.VOID, NOW + timedelta(hours=1), None)
    assert statuses(invoice)[-1] == (IS.OPEN, IS.VOID)
    assert InvoiceStatusChange.objects.filter(invoice=invoice).first().reason == "issued in error"


def test_voiding_a_draft_discards_it_without_taking_a_number():
    draft = invoice_create(customer=CustomerFactory(), lines=[line(1000)])
    numbered_before = InvoiceNumberSequence.objects.filter(year=NOW.year).values_list("last_number", flat=True).first()

    invoice_void(invoice=draft, actor=ACTOR, reason="drafted in error", now=NOW)

    draft.refresh_from_db()
    assert (draft.status, draft.number, draft.issued_at) == (IS.VOID, None, None)
    assert statuses(draft)[-1] == (IS.DRAFT, IS.VOID)
    assert InvoiceNumberSequence.objects.filter(year=NOW.year).values_list(
        "last_number", flat=True).first() == numbered_before


def test_void_is_refused_for_paid_invoices_and_invoices_with_payments():
    partly_paid = open_invoice(amount=1000)
    payment_record_manual(customer=partly_paid.customer, amount=400, method=PaymentMethod.CASH, actor=ACTOR,
                          invoice=partly_paid)
    paid = open_invoice(amount=0)

    with pytest.raises(IllegalTransition) as with_payments:
        invoice_void(invoice=partly_paid, actor=ACTOR)
    with pytest.raises(IllegalTransition):
        invoice_void(invoice=paid, actor=ACTOR)

    assert with_payments.value.code == "invoice_has_payments"
    assert Invoice.objects.get(pk=partly_paid.pk).status == IS.OPEN
    assert Invoice.objects.get(pk=paid.pk).status == IS.PAID


def test_mark_paid_settles_and_activates_an_incomplete_subscription():
    plan = PlanFactory(amount=2999, trial_days=0, credits_per_period=1000)
    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=ACTOR, now=NOW)

    invoice_mark_paid(invoice=invoice, actor=ACTOR, reason="paid by wire, reference 88", now=NOW)

    invoice.refresh_from_db()
    subscription.refresh_from_db()
    assert (invoice.status, invoice.amount_due, invoice.paid_at) == (IS.PAID, 0, NOW)
    assert subscription.status == S.ACTIVE
    assert credit_balance_get(customer=subscription.customer) == 1000


def test_mark_paid_on_a_void_invoice_is_refused_and_changes_nothing():
    invoice = open_invoice(amount=700)
    invoice_void(invoice=invoice, actor=ACTOR)

    with pytest.raises(IllegalTransition):
        invoice_mark_paid(invoice=invoice, actor=ACTOR)

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == (IS.VOID, 700)


# ------------------------------------------------------------------------------------------ manual payments


def test_manual_payment_settles_the_invoice_and_activates_the_subscription():
    staff = StaffUserFactory()
    plan = PlanFactory(amount=999, trial_days=0, credits_per_period=100)
    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=ACTOR, now=NOW)
    assert (subscription.status, invoice.status) == (S.INCOMPLETE, IS.OPEN)

    payment = payment_record_manual(customer=subscription.customer, amount=999, method=PaymentMethod.CHECK,
                                    actor=Actor.of_user(staff), invoice=invoice, reference="check 1042",
                                    now=NOW + timedelta(days=1))

    assert (payment.status, payment.amount, payment.currency, payment.reference) == (P.SUCCEEDED, 999, "USD",
                                                                                    "check 1042")
    assert payment.succeeded_at == NOW + timedelta(days=1)
    change = PaymentStatusChange.objects.get(payment=payment)
    assert (change.from_status, change.to_status, change.actor, change.provider_data) == (
        P.PENDING, P.SUCCEEDED, staff, {"reference": "check 1042"})
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (IS.PAID, 999, 0)
    subscription.refresh_from_db()
    assert subscription.status == S.ACTIVE
    assert credit_balance_get(customer=subscription.customer) == 100
    activation = SubscriptionEvent.objects.filter(subscription=subscription,
                                                  kind=SubscriptionEventKind.STATUS_CHANGED).get()
    assert (activation.from_status, activation.to_status, activation.reason) == (S.INCOMPLETE, S.ACTIVE,
                                                                                "invoice paid")


def test_partial_manual_payments_add_up():
    invoice = open_invoice(amount=1000)

    payment_record_manual(customer=invoice.customer, amount=300, method=PaymentMethod.CASH, actor=ACTOR,
                          invoice=invoice)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (IS.OPEN, 300, 700)

    payment_record_manual(customer=invoice.customer, amount=700, method=PaymentMethod.BANK_TRANSFER, actor=ACTOR,
                          invoice=invoice)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (IS.PAID, 1000, 0)


def test_an_uncollectible_invoice_can_still_be_paid():
    invoice = open_invoice(amount=500)
    invoice_transition(invoice=invoice_lock(invoice_id=invoice.pk), to_status=IS.UNCOLLECTIBLE, actor=ACTOR)

    payment_record_manual(customer=invoice.customer, amount=500, method=PaymentMethod.CASH, actor=ACTOR,
                          invoice=invoice)

    assert Invoice.objects.get(pk=invoice.pk).status == IS.PAID


def test_the_same_cheque_recorded_twice_from_a_stale_page_is_refused():
    invoice = open_invoice(amount=800)
    stale = Invoice.objects.get(pk=invoice.pk)
    payment_record_manual(customer=invoice.customer, amount=800, method=PaymentMethod.CHECK, actor=ACTOR,
                          invoice=invoice, reference="check 7")

    with pytest.raises(IllegalTransition) as refused:
        payment_record_manual(customer=stale.customer, amount=800, method=PaymentMethod.CHECK, actor=ACTOR,
                              invoice=stale, reference="check 7")

    assert refused.value.code == "invoice_not_payable"
    assert Payment.objects.count() == 1
    assert invoice_total_mismatches() == []


def test_manual_payment_without_an_invoice():
    customer = CustomerFactory()

    payment = payment_record_manual(customer=customer, amount=5000, method=PaymentMethod.BANK_TRANSFER, actor=ACTOR)

    assert (payment.status, payment.invoice) == (P.SUCCEEDED, None)


@pytest.mark.parametrize(("fields", "error", "code"), [
    ({"method": PaymentMethod.STRIPE}, InvalidOperation, "invalid_method"),
    ({"method": PaymentMethod.PAYPAL}, InvalidOperation, "invalid_method"),
    ({"amount": 0}, InvalidOperation, "invalid_amount"),
    ({"amount": -5}, InvalidOperation, "invalid_amount"),
    ({"other_customer": True}, InvalidOperation, "invoice_customer_mismatch"),
    ({"invoice_status": IS.VOID}, IllegalTransition, "invoice_not_payable"),
    ({"invoice_status": IS.DRAFT}, IllegalTransition, "invoice_not_payable"),
])
def test_manual_payment_refuses_bad_input_and_records_nothing(fields, error, code):
    invoice = open_invoice(amount=1000)
    if fields.pop("invoice_status", None) == IS.VOID:
        invoice_void(invoice=invoice, actor=ACTOR)
        invoice.refresh_from_db()
    elif code == "invoice_not_payable":
        invoice = invoice_create(customer=invoice.customer, lines=[line(100)])
    customer = CustomerFactory() if fields.pop("other_customer", False) else invoice.customer
    values = dict(customer=customer, amount=1000, method=PaymentMethod.CASH, actor=ACTOR, invoice=invoice)
    values.update(fields)

    with pytest.raises(error) as refused:
        payment_record_manual(**values)

    assert refused.value.code == code
    assert not Payment.objects.exists()


# ------------------------------------------------------------------------------------------ payment transitions


@pytest.mark.parametrize(("from_status", "to_status"), [
    (f, t) for f in P.values for t in P.values if t not in ALLOWED_PAYMENT_TRANSITIONS[f]
])
def test_illegal_payment_transitions_are_refused_and_change_nothing(from_status, to_status):
    payment = PaymentFactory(status=from_status)

    with pytest.raises(IllegalTransition):
        payment_transition(payment=payment_lock(payment_id=payment.pk), to_status=to_status, actor=ACTOR)

    payment.refresh_from_db()
    assert payment.status == from_status
    assert payment_statuses(payment) == []


def test_a_failed_card_payment_can_be_retried_and_succeed():
    invoice = open_invoice(amount=999)
    payment = PaymentFactory(customer=invoice.customer, invoice=invoice, amount=999, failure_code="card_declined",
                             failure_reason="insufficient funds")
    payment_transition(payment=payment, to_status=P.FAILED, actor=ACTOR, provider_data={"decline_code": "x"})

    payment_transition(payment=payment, to_status=P.PROCESSING, actor=ACTOR)
    payment_transition(payment=payment, to_status=P.SUCCEEDED, actor=ACTOR, now=NOW)

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.failure_reason, payment.succeeded_at) == (
        P.SUCCEEDED, "", "", NOW)
    assert payment_statuses(payment) == [(P.PENDING, P.FAILED), (P.FAILED, P.PROCESSING),
                                         (P.PROCESSING, P.SUCCEEDED)]
    assert PaymentStatusChange.objects.filter(payment=payment).order_by("id").first().provider_data == {
        "decline_code": "x"}
    assert Invoice.objects.get(pk=invoice.pk).status == IS.PAID


# ------------------------------------------------------------------------------------------ refunds


def paid_by(method, amount=1000):
    invoice = open_invoice(amount=amount)
    if method == PaymentMethod.STRIPE:
        payment = PaymentFactory(customer=invoice.customer, invoice=invoice, amount=amount,
                                 stripe_payment_intent_id="pi_123")
        return payment_transition(payment=payment, to_status=P.SUCCEEDED, actor=ACTOR)
    return payment_record_manual(customer=invoice.customer, amount=amount, method=method, actor=ACTOR,
                                 invoice=invoice)


def test_partial_then_full_refund():
    payment = paid_by(PaymentMethod.CASH)

    first = payment_refund(payment=payment, actor=ACTOR, amount=300, reason="downtime")
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded, payment.refundable_amount) == (P.PARTIALLY_REFUNDED, 300, 700)

    second = payment_refund(payment=payment, actor=ACTOR)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (P.REFUNDED, 1000)
    assert [(r.amount, r.status) for r in (first, second)] == [(300, "succeeded"), (700, "succeeded")]
    assert payment_statuses(payment) == [(P.PENDING, P.SUCCEEDED), (P.SUCCEEDED, P.PARTIALLY_REFUNDED),
                                         (P.PARTIALLY_REFUNDED, P.REFUNDED)]
    # Refunds do not reopen the invoice.
    assert payment.invoice.status == IS.PAID


def test_two_partial_refunds_stay_partially_refunded():
    payment = paid_by(PaymentMethod.CHECK)

    payment_refund(payment=payment, actor=ACTOR, amount=100)
    payment_refund(payment=payment, actor=ACTOR, amount=100)

    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (P.PARTIALLY_REFUNDED, 200)
    assert Refund.objects.filter(payment=payment).count() == 2


@pytest.mark.parametrize("amount", [0, -1, 1001])
def test_refund_outside_the_refundable_amount_is_refused(amount):
    payment = paid_by(PaymentMethod.BANK_TRANSFER)

    with pytest.raises(InvalidOperation) as refused:
        payment_refund(payment=payment, actor=ACTOR, amount=amount)

    assert refused.value.extra == {"refundable": 1000}
    assert not Refund.objects.exists()
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 0


def test_refund_of_an_unsettled_or_fully_refunded_payment_is_refused():
    pending = PaymentFactory(method=PaymentMethod.CASH)
    refunded = paid_by(PaymentMethod.CASH)
    payment_refund(payment=refunded, actor=ACTOR)

    for payment in (pending, refunded):
        with pytest.raises(IllegalTransition):
            payment_refund(payment=payment, actor=ACTOR, amount=1)

    assert Refund.objects.count() == 1


def test_card_refund_without_a_gateway_changes_nothing():
    payment = paid_by(PaymentMethod.STRIPE)

    with pytest.raises(PaymentProviderUnavailable) as unavailable:
        payment_refund(payment=payment, actor=ACTOR, amount=100)

    assert unavailable.value.http_status == 503
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (P.SUCCEEDED, 0)
    assert not Refund.objects.exists()


def test_refund_with_a_used_key_returns_the_first_refund():
    payment = paid_by(PaymentMethod.CASH)
    first = payment_refund(payment=payment, actor=ACTOR, amount=250, idempotency_key="ticket-9")

    again = payment_refund(payment=payment, actor=ACTOR, amount=250, idempotency_key="ticket-9")

    assert again.pk == first.pk
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 250


def test_refund_key_used_for_another_payment_or_amount_is_a_conflict():
    payment, other = paid_by(PaymentMethod.CASH), paid_by(PaymentMethod.CASH)
    payment_refund(payment=payment, actor=ACTOR, amount=250, idempotency_key="ticket-9")

    with pytest.raises(IdempotencyConflict):
        payment_refund(payment=other, actor=ACTOR, amount=250, idempotency_key="ticket-9")
    with pytest.raises(IdempotencyConflict):
        payment_refund(payment=payment, actor=ACTOR, amount=300, idempotency_key="ticket-9")

    assert Payment.objects.get(pk=other.pk).amount_refunded == 0
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 250


# ------------------------------------------------------------------------------------------ subscription flows


def test_start_a_free_plan():
    plan = PlanFactory(amount=0, trial_days=0, credits_per_period=10)

    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=ACTOR, now=NOW)

    assert (subscription.status, invoice) == (S.ACTIVE, None)
    assert credit_balance_get(customer=subscription.customer) == 10


def test_start_a_trial_grants_the_plan_credits_and_bills_nothing():
    plan = PlanFactory(amount=999, trial_days=14, credits_per_period=100)

    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=ACTOR, now=NOW)

    assert (subscription.status, invoice) == (S.TRIALING, None)
    assert credit_balance_get(customer=subscription.customer) == 100
    assert not Invoice.objects.exists()


def test_start_a_paid_plan_issues_the_first_invoice():
    plan = PlanFactory(name="Pro", amount=2999, trial_days=14)

    subscription, invoice = subscription_start(customer=CustomerFactory(), plan=plan, actor=ACTOR, now=NOW,
                                               with_trial=False)

    assert subscription.status == S.INCOMPLETE
    assert (invoice.status, invoice.total, invoice.billing_reason, invoice.number) == (
        IS.OPEN, 2999, BillingReason.SUBSCRIPTION_CREATE, "INV-2025-000001")
    assert (invoice.period_start, invoice.period_end) == (subscription.current_period_start,
                                                          subscription.current_period_end)
    [subscription_line] = invoice.lines.all()
    assert (subscription_line.kind, subscription_line.amount) == (InvoiceLineKind.SUBSCRIPTION, 2999)
    assert credit_balance_get(customer=subscription.customer) == 0


def active_on(plan, *, start=NOW):
    """An active monthly subscription whose period is [Apr 1, May 1) 2025: 30 days."""
    customer = CustomerFactory()
    subscription, invoice = subscription_start(customer=customer, plan=plan, actor=ACTOR, now=start,
                                               with_trial=False)
    if invoice is not None:
        invoice_mark_paid(invoice=invoice, actor=ACTOR, now=start)
    subscription.refresh_from_db()
    return subscription


@pytest.mark.parametrize(("days_used", "credit", "charge"), [
    (15, -500, 1500),    # half the period left: -499.5 and 1499.5, each rounded half-up away from zero
    (10, -666, 1999),    # two thirds left: -666 exactly and 1999.33
    (0, -999, 2999),     # upgrade at the very start
])
def test_upgrade_is_prorated_to_the_second(days_used, credit, charge):
    basic, pro = PlanFactory(name="Basic", amount=999), PlanFactory(name="Pro", amount=2999)
    subscription = active_on(basic)

    change = subscription_change_plan(subscription=subscription, new_plan=pro, actor=ACTOR,
                                      now=NOW + timedelta(days=days_used), reason="more capacity")

    assert change.effective == "immediate"
    invoice = change.invoice
    assert list(invoice.lines.order_by("id").values_list("kind", "amount")) == [
        (InvoiceLineKind.PRORATION, credit), (InvoiceLineKind.PRORATION, charge)]
    assert change.proration_amount == invoice.total == credit + charge
    assert (invoice.billing_reason, invoice.status) == (BillingReason.SUBSCRIPTION_UPDATE, IS.OPEN)
    subscription.refresh_from_db()
    assert subscription.plan == pro
    event = SubscriptionEvent.objects.filter(subscription=subscription, kind=SubscriptionEventKind.PLAN_CHANGED).get()
    assert (event.from_plan, event.to_plan, event.data) == (basic, pro, {"invoice_id": invoice.pk})


def test_downgrade_waits_for_the_period_end():
    basic, pro = PlanFactory(amount=999), PlanFactory(amount=2999)
    subscription = active_on(pro)

    change = subscription_change_plan(subscription=subscription, new_plan=basic, actor=ACTOR,
                                      now=NOW + timedelta(days=3))

    assert (change.effective, change.invoice, change.proration_amount) == ("period_end", None, 0)
    assert change.effective_at == subscription.current_period_end
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.scheduled_plan) == (pro, basic)
    assert SubscriptionEvent.objects.filter(subscription=subscription,
                                            kind=SubscriptionEventKind.PLAN_CHANGE_SCHEDULED).count() == 1
    assert Invoice.objects.filter(billing_reason=BillingReason.SUBSCRIPTION_UPDATE).count() == 0


def test_plan_change_during_a_trial_is_immediate_and_free():
    basic, pro = PlanFactory(amount=999, trial_days=14), PlanFactory(amount=2999, trial_days=14)
    subscription, _ = subscription_start(customer=CustomerFactory(), plan=pro, actor=ACTOR, now=NOW)
    assert subscription.status == S.TRIALING

    change = subscription_change_plan(subscription=subscription, new_plan=basic, actor=ACTOR, now=NOW)

    assert (change.effective, change.invoice) == ("immediate", None)
    subscription.refresh_from_db()
    assert subscription.plan == basic


@pytest.mark.parametrize(("target", "error", "code"), [
    ("same", IllegalTransition, "same_plan"),
    ("inactive", InvalidOperation, "plan_inactive"),
    ("currency", InvalidOperation, "currency_mismatch"),
    ("yearly", InvalidOperation, "interval_mismatch"),
    ("canceled", IllegalTransition, "subscription_canceled"),
])
def test_plan_change_refusals_change_nothing(target, error, code):
    basic = PlanFactory(amount=999)
    subscription = active_on(basic)
    new_plan = {
        "same": basic, "inactive": PlanFactory(amount=2999, is_active=False),
        "currency": PlanFactory(amount=2999, currency="EUR"), "yearly": PlanFactory(amount=9990, interval="year"),
        "canceled": PlanFactory(amount=2999),
    }[target]
    if target == "canceled":
        subscription.status = S.CANCELED
        subscription.save()

    with pytest.raises(error) as refused:
        subscription_change_plan(subscription=subscription, new_plan=new_plan, actor=ACTOR, now=NOW)

    assert refused.value.code == code
    subscription.refresh_from_db()
    assert subscription.plan == basic
    assert not Invoice.objects.filter(billing_reason=BillingReason.SUBSCRIPTION_UPDATE).exists()


def test_paying_a_proration_does_not_clear_an_unpaid_renewal():
    basic, pro = PlanFactory(amount=999), PlanFactory(amount=2999)
    subscription = SubscriptionFactory(plan=basic, status=S.PAST_DUE, billing_cycle_anchor=NOW)
    renewal = open_invoice(customer=subscription.customer, amount=999, subscription=subscription,
                           billing_reason=BillingReason.SUBSCRIPTION_CYCLE, period_start=NOW,
                           period_end=NOW + timedelta(days=30))

    change = subscription_change_plan(subscription=subscription, new_plan=pro, actor=ACTOR,
                                      now=NOW + timedelta(days=15))
    payment_record_manual(customer=subscription.customer, amount=change.invoice.amount_due,
                          method=PaymentMethod.CASH, actor=ACTOR, invoice=change.invoice)

    subscription.refresh_from_db()
    assert subscription.status == S.PAST_DUE
    payment_record_manual(customer=subscription.customer, amount=999, method=PaymentMethod.CASH, actor=ACTOR,
                          invoice=renewal)
    subscription.refresh_from_db()
    assert subscription.status == S.ACTIVE
