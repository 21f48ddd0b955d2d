"""`manage.py payments reconcile` (payments/reconciliation.py, payments/selectors/reconciliation.py,
the command), once per rail that can list its transactions, against its loopback peer (the contract
suite's harnesses: localstripe, the PayPal peer): every drift printed, --fix applies the provider's state
through the state machines, exit 1 while a drift remains."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from payments.models import Payment, PaymentStatus, RefundStatus
from payments.providers import ChargeRequest
from payments.services import payment_refund
from payments.tests.providers.contract.rails import HARNESSES
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
P = PaymentStatus


@pytest.fixture(params=["stripe", "paypal"])
def rail(request, settings):
    """A rail whose peer forgets its past transactions, so every one it lists belongs to this test."""
    harness = HARNESSES[request.param](settings=settings, request=request)
    harness.transactions_forget()
    return harness


def reconcile(rail, *args) -> tuple[int, str]:
    out = StringIO()
    since = (timezone.now() - timedelta(days=1)).isoformat()
    try:
        call_command("payments", "reconcile", "--provider", rail.code, "--since", since, *args, stdout=out)
    except CommandError as exc:
        return 1, out.getvalue() + str(exc)
    return 0, out.getvalue()


def test_books_in_step_exit_zero(rail, actor):
    payment = rail.paid_payment(CustomerFactory(user=None), 2500, actor)
    payment_refund(payment=payment, actor=actor, amount=500, idempotency_key=f"r-agree-{payment.pk}")
    code, out = reconcile(rail)
    assert code == 0 and f"{rail.code} and our books agree" in out, out


def test_a_payment_completed_at_the_provider_but_processing_here_is_fixed_through_the_state_machine(rail, actor):
    payment = rail.drifted_payment(CustomerFactory(user=None), 1700, actor)
    payment.refresh_from_db()
    assert payment.status == P.PROCESSING
    reference = rail.listed_reference(payment)

    code, out = reconcile(rail)
    assert code == 1 and f"status_differs payment {reference}" in out, out
    code, out = reconcile(rail, "--fix")
    payment.refresh_from_db()
    assert code == 0 and f"fixed status_differs payment {reference}" in out, out
    assert payment.status == P.SUCCEEDED and payment.status_changes.filter(reason__startswith="reconciliation").exists()


def test_a_refund_made_at_the_provider_is_recorded_by_fix(rail, actor):
    payment = rail.paid_payment(CustomerFactory(user=None), 3000, actor)
    made_there = rail.refund_at_provider(payment, 1000)

    code, out = reconcile(rail)
    assert code == 1 and f"missing_here refund {made_there}" in out, out
    code, out = reconcile(rail, "--fix")
    payment.refresh_from_db()
    assert code == 0, out
    assert (payment.status, payment.amount_refunded) == (P.PARTIALLY_REFUNDED, 1000)
    refund = payment.refunds.get()
    assert (refund.status, refund.provider_refund_id) == (RefundStatus.SUCCEEDED, made_there)
    assert reconcile(rail, "--fix")[0] == 0  # applied once: a second run finds nothing more


def test_money_the_provider_does_not_know_and_amounts_that_differ_stay_drifts(rail, actor):
    charged = rail.paid_payment(CustomerFactory(user=None), 1500, actor)
    Payment.objects.filter(pk=charged.pk).update(amount=1600)  # someone edited our books
    customer = CustomerFactory()
    ghost = Payment.objects.create(customer=customer, amount=900, currency=customer.currency, method=rail.method,
                                   status=P.SUCCEEDED, provider=rail.code, provider_payment_id="ORD-NOT-THERE")

    code, out = reconcile(rail, "--fix")
    assert code == 1
    assert "amount_differs payment" in out and f"payment #{charged.pk} succeeded 1600" in out, out
    assert f"missing_there payment ORD-NOT-THERE: ours payment #{ghost.pk}" in out
    assert "2 drift(s) remain" in out


def test_money_taken_at_the_provider_that_we_never_recorded_is_missing_here(rail, actor):
    customer = CustomerFactory(user=None)
    # A charge whose answer never reached our books (the process died before recording it).
    result = rail.rail.charge_off_session(ChargeRequest(account=rail.account(customer), amount=1200,
                                                        currency=customer.currency, idempotency_key="untracked"))
    reference = {result.reference, result.charge_reference}

    code, out = reconcile(rail, "--fix")
    [line] = [line for line in out.splitlines() if line.startswith("missing_here payment")]
    assert code == 1 and line.split()[2].rstrip(":") in reference and "theirs succeeded 1200" in line, out


def test_a_rail_that_cannot_list_its_transactions_is_refused_in_one_line(settings):
    with pytest.raises(CommandError, match="cannot be reconciled"):
        call_command("payments", "reconcile", "--provider", "manual")


@pytest.mark.parametrize("args", [("--since", "yesterday"), ("--since", "2030-01-02", "--until", "2030-01-01"),
                                  ("--provider", "nope")])
def test_bad_arguments_exit_non_zero_with_one_line(paypal_api, args):
    with pytest.raises(CommandError):
        call_command("payments", "reconcile", "--provider", "paypal", *args)
