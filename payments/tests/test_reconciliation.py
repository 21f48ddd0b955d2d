"""`manage.py payments reconcile` (payments/reconciliation.py, payments/selectors/reconciliation.py,
the command) against the loopback PayPal: every drift printed, --fix applies the provider's state through
the state machines, exit 1 while a drift remains."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from payments.models import Payment, PaymentMethod, PaymentStatus, RefundStatus
from payments.providers.paypal import client
from payments.services import payment_refund
from payments.tests.providers.paypal.support import charged_payment
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
P = PaymentStatus


def reconcile(*args) -> tuple[int, str]:
    out = StringIO()
    since = (timezone.now() - timedelta(days=1)).isoformat()
    try:
        call_command("payments", "reconcile", "--provider", "paypal", "--since", since, *args, stdout=out)
    except CommandError as exc:
        return 1, out.getvalue() + str(exc)
    return 0, out.getvalue()


@pytest.fixture
def books_in_step(paypal_api):
    """Start from a peer whose past transactions all belong to rows this test can see."""
    paypal_api.captures.clear()
    paypal_api.refunds.clear()
    return paypal_api


def test_books_in_step_exit_zero(books_in_step, actor):
    payment = charged_payment(books_in_step, actor)
    payment_refund(payment=payment, actor=actor, amount=500, idempotency_key="r-agree")
    code, out = reconcile()
    assert code == 0 and "paypal and our books agree" in out, out


def test_a_capture_completed_at_paypal_but_processing_here_is_fixed_through_the_state_machine(books_in_step, actor):
    books_in_step.capture_status = "PENDING"
    payment = charged_payment(books_in_step, actor)
    payment.refresh_from_db()
    assert payment.status == P.PROCESSING
    capture_id = next(iter(books_in_step.captures))
    books_in_step.capture_set_status(capture_id, "COMPLETED")  # its webhook never came

    code, out = reconcile()
    assert code == 1 and f"status_differs payment {capture_id}" in out
    code, out = reconcile("--fix")
    payment.refresh_from_db()
    assert code == 0 and f"fixed status_differs payment {capture_id}" in out
    assert payment.status == P.SUCCEEDED and payment.status_changes.filter(reason__startswith="reconciliation").exists()


def test_a_refund_made_in_paypal_is_recorded_by_fix(books_in_step, actor):
    payment = charged_payment(books_in_step, actor, amount=3000)
    capture_id = next(iter(books_in_step.captures))
    made_there = client.capture_refund(capture_id=capture_id, amount=1000, currency="USD", custom_id="",
                                       request_id="dashboard-refund")

    code, out = reconcile()
    assert code == 1 and f"missing_here refund {made_there.id}" in out
    code, out = reconcile("--fix")
    payment.refresh_from_db()
    assert code == 0, out
    assert (payment.status, payment.amount_refunded) == (P.PARTIALLY_REFUNDED, 1000)
    assert payment.refunds.get().status == RefundStatus.SUCCEEDED


def test_money_paypal_does_not_know_and_amounts_that_differ_stay_drifts(books_in_step, actor):
    charged = charged_payment(books_in_step, actor, amount=1500)
    Payment.objects.filter(pk=charged.pk).update(amount=1600)  # someone edited our books
    ghost = Payment.objects.create(customer=CustomerFactory(), amount=900, currency="USD", method=PaymentMethod.PAYPAL,
                                   status=P.SUCCEEDED, provider="paypal",
                                   provider_payment_id="ORD-NOT-AT-PAYPAL")

    code, out = reconcile("--fix")
    assert code == 1
    assert "amount_differs payment" in out and f"payment #{charged.pk} succeeded 1600 USD" in out
    assert f"missing_there payment ORD-NOT-AT-PAYPAL: ours payment #{ghost.pk}" in out
    assert "2 drift(s) remain" in out


def test_a_rail_that_cannot_list_its_transactions_is_refused_in_one_line(settings):
    with pytest.raises(CommandError, match="cannot be reconciled"):
        call_command("payments", "reconcile", "--provider", "manual")


@pytest.mark.parametrize("args", [("--since", "yesterday"), ("--since", "2030-01-02", "--until", "2030-01-01"),
                                  ("--provider", "nope")])
def test_bad_arguments_exit_non_zero_with_one_line(paypal_api, args):
    with pytest.raises(CommandError):
        call_command("payments", "reconcile", "--provider", "paypal", *args)
