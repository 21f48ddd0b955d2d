"""payments.services.payments: manual payments and payment status transitions."""

from datetime import timedelta

import pytest

from core.audit import Actor
from core.exceptions import IllegalTransition, InvalidOperation
from credits.selectors import credit_balance_get
from payments.models import Invoice, Payment, PaymentMethod, PaymentStatusChange
from payments.providers.manual.services import payment_record_manual
from payments.selectors import invoice_total_mismatches
from payments.services import (
    ALLOWED_PAYMENT_TRANSITIONS,
    invoice_create,
    invoice_lock,
    invoice_transition,
    invoice_void,
    payment_lock,
    payment_transition,
    subscription_start,
)
from payments.tests.factories import PaymentFactory
from payments.tests.services_support import ACTOR, IS, NOW, P, S, line, open_invoice, payment_statuses
from subscriptions.models import SubscriptionEvent, SubscriptionEventKind
from subscriptions.tests.factories import CustomerFactory, PlanFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


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

    with pytest.raises(InvalidOperation) as refused:
        payment_record_manual(customer=stale.customer, amount=800, method=PaymentMethod.CHECK, actor=ACTOR,
                              invoice=stale, reference="check 7")

    assert refused.value.code == "invoice_not_payable"
    assert refused.value.extra["fields"] == {"invoice": ["A paid invoice takes no payment."]}
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
    ({"invoice_status": IS.VOID}, InvalidOperation, "invoice_not_payable"),
    ({"invoice_status": IS.DRAFT}, InvalidOperation, "invoice_not_payable"),
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


