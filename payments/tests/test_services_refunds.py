"""Card refunds: the intent is committed, Stripe is asked with no transaction open, the answer is recorded
in a short transaction. What that guarantees: concurrent refunds never exceed the captured amount, a
Stripe failure changes nothing but the refund, a retry after a crash refunds once, and manual refunds
never call a provider. Then refunds of settled payments of any method: amounts, states and idempotency keys."""

import threading
from dataclasses import dataclass, field

import pytest
from django.db import connections

from billing_project.tests.api_support import staff_client
from billing_project.tests.threads import run_threads
from core.audit import Actor
from core.exceptions import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidOperation,
    PaymentProviderError,
    PaymentProviderUnavailable,
)
from payments.models import Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus, RefundStatusChange
from payments.providers.manual.services import payment_record_manual
from payments.providers.stripe import gateway as stripe_gateway
from payments.providers.stripe.gateway import RefundResult
from payments.services import payment_refund, payment_transition, refund_transition
from payments.tests.conftest import open_transactions
from payments.tests.factories import PaymentFactory, StripeCustomerFactory
from payments.tests.services_support import IS, P, open_invoice, payment_statuses
from payments.tests.stripe_support import new_id
from subscriptions.tests.factories import CustomerFactory

R = RefundStatus
ACTOR = Actor.system("test")


@pytest.fixture
def stripe_key(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_refunds"


def card_payment(amount=1000) -> Payment:
    return Payment.objects.create(customer=StripeCustomerFactory(stripe_customer_id=new_id("cus")), amount=amount,
                                  currency="USD", method=PaymentMethod.STRIPE,
                                  provider="stripe", provider_payment_id=new_id("pi"),
                                  provider_charge_id=new_id("ch"), status=PaymentStatus.SUCCEEDED)


@dataclass
class FakeStripeRefunds:
    """refund_create as Stripe behaves: one refund per idempotency key, `status` for new ones; remembers
    each call and whether a transaction was open."""

    status: str = "succeeded"
    calls: list = field(default_factory=list)
    made: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, *, payment_intent_id, amount, metadata, idempotency_key):
        with self.lock:
            self.calls.append({"key": idempotency_key, "amount": amount, "metadata": metadata,
                               "open_transactions": open_transactions()})
            if idempotency_key not in self.made:
                self.made[idempotency_key] = RefundResult(
                    id=new_id("re"), status=self.status, amount=amount, currency="USD",
                    payment_intent_id=payment_intent_id, charge_id="", metadata=metadata)
            return self.made[idempotency_key]


@pytest.fixture
def fake_stripe(monkeypatch, stripe_key) -> FakeStripeRefunds:
    fake = FakeStripeRefunds()
    monkeypatch.setattr(stripe_gateway, "refund_create", fake)
    return fake


def statuses(refund: Refund) -> list[tuple[str, str]]:
    return list(RefundStatusChange.objects.filter(refund=refund).order_by("id").values_list("from_status",
                                                                                           "to_status"))


@pytest.mark.django_db
def test_a_card_refund_asks_stripe_under_its_own_key_with_its_id_in_metadata(fake_stripe):
    payment = card_payment()

    refund = payment_refund(payment=payment, actor=ACTOR, amount=300, reason="goodwill", idempotency_key="t-1")

    payment.refresh_from_db()
    assert fake_stripe.calls == [{"key": f"refund-{refund.pk}", "amount": 300, "open_transactions": 0,
                                  "metadata": {"refund_id": str(refund.pk), "payment_id": str(payment.pk)}}]
    assert refund.status == R.SUCCEEDED and refund.provider_refund_id == fake_stripe.made[f"refund-{refund.pk}"].id
    assert statuses(refund) == [(R.REQUESTED, R.SUCCEEDED)]
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, 300)


@pytest.mark.django_db
def test_a_stripe_failure_leaves_the_refund_failed_and_the_payment_unchanged(monkeypatch, stripe_key):
    payment = card_payment()

    def refused(**kwargs):
        raise PaymentProviderError("Stripe request failed: charge already refunded",
                                   extra={"provider_code": "charge_already_refunded", "request_id": "req_1"})

    monkeypatch.setattr(stripe_gateway, "refund_create", refused)
    with pytest.raises(PaymentProviderError) as failed:
        payment_refund(payment=payment, actor=ACTOR, amount=400, idempotency_key="t-2")

    assert failed.value.http_status == 502
    refund = Refund.objects.get()
    assert (refund.status, refund.provider_refund_id) == (R.FAILED, None)
    change = RefundStatusChange.objects.get(refund=refund)
    assert (change.from_status, change.to_status) == (R.REQUESTED, R.FAILED)
    assert change.provider_data["provider_code"] == "charge_already_refunded"
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded, payment.status_changes.count()) == (PaymentStatus.SUCCEEDED, 0, 0)
    # The failed refund holds nothing back; its key answers the failure again without asking Stripe.
    monkeypatch.setattr(stripe_gateway, "refund_create", FakeStripeRefunds())
    with pytest.raises(PaymentProviderError) as replayed:
        payment_refund(payment=payment, actor=ACTOR, amount=400, idempotency_key="t-2")
    assert replayed.value.code == "refund_failed" and stripe_gateway.refund_create.calls == []
    assert payment_refund(payment=payment, actor=ACTOR, idempotency_key="t-3").amount == 1000


@pytest.mark.django_db
def test_a_provider_error_answers_502_through_the_api_and_leaves_the_refund_failed(monkeypatch, stripe_key):
    payment = card_payment()

    def down(**kwargs):
        raise PaymentProviderError("Stripe request failed: timeout")

    monkeypatch.setattr(stripe_gateway, "refund_create", down)
    response = staff_client().post(f"/api/v1/payments/{payment.pk}/refund/", {"amount": 200}, format="json",
                                   HTTP_IDEMPOTENCY_KEY="api-down")

    assert response.status_code == 502, response.content
    assert response.json()["error"]["code"] == "payment_provider_error"
    assert Refund.objects.get().status == R.FAILED
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 0


@pytest.mark.django_db
def test_a_refund_left_requested_by_a_crash_is_asked_for_again_under_the_same_key_and_counted_once(
        monkeypatch, fake_stripe):
    payment = card_payment()

    def crash(**kwargs):
        fake_stripe(**kwargs)  # Stripe made the refund; our process died before recording it
        raise SystemExit("worker killed")

    monkeypatch.setattr(stripe_gateway, "refund_create", crash)
    with pytest.raises(SystemExit):
        payment_refund(payment=payment, actor=ACTOR, amount=600, idempotency_key="t-4")
    assert Refund.objects.get().status == R.REQUESTED
    # While it is requested, its amount is held: only the rest can be refunded.
    with pytest.raises(InvalidOperation) as held:
        payment_refund(payment=payment, actor=ACTOR, amount=500)
    assert held.value.extra == {"refundable": 400}

    monkeypatch.setattr(stripe_gateway, "refund_create", fake_stripe)
    refund = payment_refund(payment=payment, actor=ACTOR, amount=600, idempotency_key="t-4")

    assert [call["key"] for call in fake_stripe.calls] == [f"refund-{refund.pk}"] * 2
    assert len(fake_stripe.made) == 1 and refund.provider_refund_id == fake_stripe.made[f"refund-{refund.pk}"].id
    payment.refresh_from_db()
    assert (refund.status, payment.amount_refunded, Refund.objects.count()) == (R.SUCCEEDED, 600, 1)


@pytest.mark.django_db
def test_a_pending_refund_holds_its_amount_and_leaves_the_payment_as_it_is(fake_stripe):
    fake_stripe.status = "pending"
    payment = card_payment()

    refund = payment_refund(payment=payment, actor=ACTOR, amount=700)

    payment.refresh_from_db()
    assert refund.status == R.PENDING and refund.provider_refund_id
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.SUCCEEDED, 0)
    with pytest.raises(InvalidOperation) as held:
        payment_refund(payment=payment, actor=ACTOR, amount=400)
    assert held.value.extra == {"refundable": 300} and "700 more is being refunded" in held.value.message


@pytest.mark.django_db
def test_manual_refunds_never_call_a_provider(monkeypatch, settings):
    settings.STRIPE_SECRET_KEY = ""
    never = FakeStripeRefunds()
    monkeypatch.setattr(stripe_gateway, "refund_create", never)
    payment = payment_record_manual(customer=CustomerFactory(), amount=900, method=PaymentMethod.BANK_TRANSFER,
                                    actor=ACTOR)

    refund = payment_refund(payment=payment, actor=ACTOR, amount=900, reason="returned")

    payment.refresh_from_db()
    assert never.calls == [] and refund.status == R.SUCCEEDED and refund.provider_refund_id is None
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.REFUNDED, 900)


@pytest.mark.django_db
def test_refund_transition_refuses_illegal_moves_and_audits_legal_ones(fake_stripe):
    refund = payment_refund(payment=card_payment(), actor=ACTOR, amount=100)

    for to_status in (R.FAILED, R.PENDING, R.REQUESTED, R.CANCELED):
        with pytest.raises(IllegalTransition):
            refund_transition(refund=refund, to_status=to_status, actor=ACTOR)

    assert statuses(refund) == [(R.REQUESTED, R.SUCCEEDED)]
    assert Refund.objects.get(pk=refund.pk).status == R.SUCCEEDED


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("amounts", [[400] * 4, [None] * 3, [700, 600, 300, 200]],
                         ids=["partial", "full", "mixed"])
def test_concurrent_refunds_of_one_payment_never_exceed_its_amount(monkeypatch, stripe_key, amounts):
    """Every Stripe call is held open until each thread has either reached Stripe or been refused, so the
    refunds in flight overlap as much as they can."""
    payment = card_payment(amount=1000)
    settled = threading.Condition()
    counts = {"reached_or_refused": 0}
    release = threading.Event()
    fake = FakeStripeRefunds()

    def note_progress():
        with settled:
            counts["reached_or_refused"] += 1
            settled.notify_all()

    def held_refund_create(**kwargs):
        note_progress()
        assert release.wait(timeout=60), "never released"
        return fake(**kwargs)

    monkeypatch.setattr(stripe_gateway, "refund_create", held_refund_create)
    outcomes = []

    def refund(amount):
        try:
            outcomes.append(payment_refund(payment=payment, actor=ACTOR, amount=amount).amount)
        except InvalidOperation:
            outcomes.append(("refused", amount))
            note_progress()
        finally:
            connections.close_all()

    def release_when_all_settled():
        with settled:
            assert settled.wait_for(lambda: counts["reached_or_refused"] == len(amounts), timeout=60)
        release.set()

    threads = run_threads([*(lambda a=a: refund(a) for a in amounts), release_when_all_settled], join_timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    payment.refresh_from_db()
    refunded = [outcome for outcome in outcomes if not isinstance(outcome, tuple)]
    refused = [amount for _, amount in (outcome for outcome in outcomes if isinstance(outcome, tuple))]
    assert len(outcomes) == len(amounts) and refunded
    assert sum(refunded) == payment.amount_refunded <= 1000
    assert sum(call["amount"] for call in fake.calls) == payment.amount_refunded
    assert all(call["open_transactions"] == 0 for call in fake.calls)
    # Each refused refund did not fit next to the ones committed before it (a full refund: nothing was left).
    assert all(payment.amount_refunded == 1000 if amount is None else amount > 1000 - payment.amount_refunded
               for amount in refused)
    assert sorted(Refund.objects.filter(payment=payment).values_list("status", flat=True)) == [R.SUCCEEDED] * len(
        refunded)


# ------------------------------------------------------------------------------ refunds of settled payments


def paid_by(method, amount=1000):
    invoice = open_invoice(amount=amount)
    if method == PaymentMethod.STRIPE:
        payment = PaymentFactory(customer=invoice.customer, invoice=invoice, amount=amount,
                                 provider_payment_id="pi_123")
        return payment_transition(payment=payment, to_status=P.SUCCEEDED, actor=ACTOR)
    return payment_record_manual(customer=invoice.customer, amount=amount, method=method, actor=ACTOR,
                                 invoice=invoice)


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_two_partial_refunds_stay_partially_refunded():
    payment = paid_by(PaymentMethod.CHECK)

    payment_refund(payment=payment, actor=ACTOR, amount=100)
    payment_refund(payment=payment, actor=ACTOR, amount=100)

    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (P.PARTIALLY_REFUNDED, 200)
    assert Refund.objects.filter(payment=payment).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [0, -1, 1001])
def test_refund_outside_the_refundable_amount_is_refused(amount):
    payment = paid_by(PaymentMethod.BANK_TRANSFER)

    with pytest.raises(InvalidOperation) as refused:
        payment_refund(payment=payment, actor=ACTOR, amount=amount)

    assert refused.value.extra == {"refundable": 1000}
    assert not Refund.objects.exists()
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 0


@pytest.mark.django_db
def test_refund_of_an_unsettled_or_fully_refunded_payment_is_refused():
    pending = PaymentFactory(method=PaymentMethod.CASH)
    refunded = paid_by(PaymentMethod.CASH)
    payment_refund(payment=refunded, actor=ACTOR)

    for payment in (pending, refunded):
        with pytest.raises(IllegalTransition):
            payment_refund(payment=payment, actor=ACTOR, amount=1)

    assert Refund.objects.count() == 1


@pytest.mark.django_db
def test_card_refund_without_a_gateway_changes_nothing():
    payment = paid_by(PaymentMethod.STRIPE)

    with pytest.raises(PaymentProviderUnavailable) as unavailable:
        payment_refund(payment=payment, actor=ACTOR, amount=100)

    assert unavailable.value.http_status == 503
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (P.SUCCEEDED, 0)
    assert not Refund.objects.exists()


@pytest.mark.django_db
def test_refund_with_a_used_key_returns_the_first_refund():
    payment = paid_by(PaymentMethod.CASH)
    first = payment_refund(payment=payment, actor=ACTOR, amount=250, idempotency_key="ticket-9")

    again = payment_refund(payment=payment, actor=ACTOR, amount=250, idempotency_key="ticket-9")

    assert again.pk == first.pk
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 250


@pytest.mark.django_db
def test_refund_key_used_for_another_payment_or_amount_is_a_conflict():
    payment, other = paid_by(PaymentMethod.CASH), paid_by(PaymentMethod.CASH)
    payment_refund(payment=payment, actor=ACTOR, amount=250, idempotency_key="ticket-9")

    with pytest.raises(IdempotencyConflict):
        payment_refund(payment=other, actor=ACTOR, amount=250, idempotency_key="ticket-9")
    with pytest.raises(IdempotencyConflict):
        payment_refund(payment=payment, actor=ACTOR, amount=300, idempotency_key="ticket-9")

    assert Payment.objects.get(pk=other.pk).amount_refunded == 0
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 250


