from datetime import timedelta

import pytest
from django.utils import timezone

from core.exceptions import IllegalTransition
from payments.models import InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from payments.services import payment_transition

pytestmark = pytest.mark.django_db


def card_payment(invoice) -> Payment:
    return Payment.objects.create(customer=invoice.customer, invoice=invoice, amount=invoice.amount_due,
                                  currency=invoice.currency, method=PaymentMethod.STRIPE, provider="stripe")


def test_succeeded_never_goes_back_to_processing(first_invoice, actor):
    payment = card_payment(first_invoice)
    payment_transition(payment=payment, to_status=PaymentStatus.SUCCEEDED, actor=actor)

    with pytest.raises(IllegalTransition):
        payment_transition(payment=payment, to_status=PaymentStatus.PROCESSING, actor=actor)

    assert list(payment.status_changes.values_list("to_status", flat=True)) == ["succeeded"]


def test_provider_update_older_than_the_applied_one_is_refused(first_invoice, actor):
    payment = card_payment(first_invoice)
    newer = timezone.now()
    payment_transition(payment=payment, to_status=PaymentStatus.PROCESSING, actor=actor, provider_created=newer)

    with pytest.raises(IllegalTransition) as stale:
        payment_transition(payment=payment, to_status=PaymentStatus.FAILED, actor=actor,
                           provider_created=newer - timedelta(seconds=5))

    payment.refresh_from_db()
    assert stale.value.code == "stale_provider_update"
    assert payment.status == PaymentStatus.PROCESSING and payment.provider_updated_at == newer


def test_failure_records_why_and_leaves_the_invoice_open_for_dunning(first_invoice, actor):
    payment = card_payment(first_invoice)
    attempts, next_at = first_invoice.attempt_count, first_invoice.next_attempt_at

    payment_transition(payment=payment, to_status=PaymentStatus.FAILED, actor=actor, reason="declined",
                       failure_code="insufficient_funds", failure_reason="Your card has insufficient funds.",
                       provider_data={"payment_intent": "pi_1"})

    payment.refresh_from_db()
    first_invoice.refresh_from_db()
    assert (payment.failure_code, payment.failure_reason) == ("insufficient_funds", "Your card has insufficient funds.")
    assert payment.status_changes.get().provider_data == {"payment_intent": "pi_1"}
    assert first_invoice.status == InvoiceStatus.OPEN
    assert (first_invoice.attempt_count, first_invoice.next_attempt_at) == (attempts, next_at)


def test_a_failed_payment_can_still_succeed_and_then_pays_the_invoice(first_invoice, actor):
    payment = card_payment(first_invoice)
    payment_transition(payment=payment, to_status=PaymentStatus.FAILED, actor=actor, failure_code="card_declined")

    payment_transition(payment=payment, to_status=PaymentStatus.SUCCEEDED, actor=actor)

    first_invoice.refresh_from_db()
    assert payment.failure_code == "" and first_invoice.status == InvoiceStatus.PAID
