"""No lock is held while a payment provider answers: each path commits its intent, calls Stripe with no
transaction open, and records the outcome in a short transaction. A fake gateway call is held open (on
an Event, released by the test) while another customer's invoice is finalized under a 1 s lock timeout:
a lock still held on the invoice-number row (or on the rows the path works on) would make it fail."""

import threading
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import Client

from billing_project.tests.api_support import api_customer
from billing_project.tests.threads import run_threads
from core.audit import Actor
from payments.checkout import checkout_subscription_start
from payments.models import (
    Invoice,
    InvoiceLineKind,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from payments.providers.stripe import gateway as stripe_gateway
from payments.providers.stripe.models import StripeEvent
from payments.providers.stripe.services import customer_stripe_ensure
from payments.services import LineSpec, invoice_create, invoice_finalize, payment_refund, subscription_start
from payments.tests.conftest import open_transactions
from payments.tests.factories import StripeCustomerFactory
from payments.tests.stripe_support import (
    charge_object,
    checkout_session_object,
    deliver,
    new_id,
    refund_object,
    stripe_account_id,
    stripe_account_set,
    stripe_card,
    stripe_event,
)
from subscriptions.models import ApiIdempotencyKey, Customer, SubscriptionStatus
from subscriptions.tests.factories import CustomerFactory, PlanFactory

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor.system("test")


@dataclass
class HeldCall:
    """A gateway function that blocks until released, remembering what it saw."""

    answer: object
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    open_transactions: list = field(default_factory=list)

    def __call__(self, **kwargs):
        self.open_transactions.append(open_transactions())
        self.entered.set()
        assert self.release.wait(timeout=60), "the test never released the provider call"
        return self.answer


def _hold(monkeypatch, name: str, answer) -> HeldCall:
    held = HeldCall(answer=answer)
    monkeypatch.setattr(stripe_gateway, name, held)
    return held


def _another_customers_invoice_finalizes(*, also_lock: list = ()) -> str:
    """Finalize another customer's invoice (the year's number row) and lock `also_lock` rows, each wait
    cut to 1 s: a path still holding a lock makes this raise instead of hang."""
    draft = invoice_create(customer=CustomerFactory(), lines=[
        LineSpec(kind=InvoiceLineKind.ADJUSTMENT, description="other", unit_amount=Decimal(700))])
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '1s'")
        invoice = invoice_finalize(invoice=draft, actor=ACTOR)
        for model, pk in also_lock:
            model.objects.select_for_update().filter(pk=pk).values_list("pk").get()
    return invoice.number


def _while_held(held: HeldCall, path, *, also_lock=lambda: ()) -> dict:
    """Run `path` in a thread until it sits in the provider call, check that others proceed, release it."""
    outcome = {}

    def run():
        try:
            outcome["result"] = path()
        except Exception as exc:  # asserted on below
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert held.entered.wait(timeout=60), outcome.get("error")
        outcome["other_number"] = _another_customers_invoice_finalizes(also_lock=also_lock())
    finally:
        held.release.set()
        thread.join(timeout=60)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    assert held.open_transactions == [0]
    assert outcome["other_number"]
    return outcome


def _session(invoice_id="1"):
    return stripe_gateway.CheckoutSessionResult.from_payload(checkout_session_object(
        id=new_id("cs"), customer="cus_x", amount_total=2500, payment_intent=None,
        metadata={"invoice_id": invoice_id}) | {"url": "https://checkout.stripe.com/c/pay/cs_x"})


@pytest.fixture
def stripe_key(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_held"
    settings.CHECKOUT_REDIRECT_HOSTS = ["app.example.com"]
    settings.CHECKOUT_SUCCESS_URL = "https://app.example.com/done"
    settings.CHECKOUT_CANCEL_URL = "https://app.example.com/cancel"
    settings.CREDIT_PACKS = {"small": {"credits": 100, "prices": {"USD": 500}}}


def test_checkout_start_numbers_its_invoice_and_commits_before_calling_stripe(monkeypatch, stripe_key):
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    held = _hold(monkeypatch, "checkout_session_create", _session())

    def own_rows():
        invoice = Invoice.objects.get(customer=customer)
        # The intent is committed: the subscription and its numbered invoice are there, out of collection.
        assert invoice.number and invoice.status == InvoiceStatus.OPEN and invoice.next_attempt_at is None
        return [(Invoice, invoice.pk), (Customer, customer.pk)]

    outcome = _while_held(held, lambda: checkout_subscription_start(
        customer=customer, plan=PlanFactory(amount=2500, trial_days=0), actor=ACTOR,
        success_url="https://app.example.com/done", cancel_url="https://app.example.com/cancel"), also_lock=own_rows)

    start = outcome["result"]
    assert start.invoice.metadata["checkout_session_id"] == held.answer.id
    assert start.invoice.number < outcome["other_number"]


def test_ensuring_a_stripe_customer_calls_stripe_with_no_lock_and_stores_the_id_after(monkeypatch, stripe_key):
    customer = CustomerFactory()
    held = _hold(monkeypatch, "customer_create", stripe_gateway.StripeCustomer(
        id="cus_held", email=customer.email, default_payment_method_id="", created=None))

    _while_held(held, lambda: customer_stripe_ensure(customer=Customer.objects.get(pk=customer.pk)),
                also_lock=lambda: [(Customer, customer.pk)])

    assert stripe_account_id(customer) == "cus_held"


def test_checkout_completed_looks_the_card_up_before_locking_the_event_or_the_invoice(monkeypatch, stripe_key,
                                                                                      settings):
    from payments.tests.stripe_support import WEBHOOK_SECRET

    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    _, invoice = subscription_start(customer=customer, plan=PlanFactory(amount=1500, trial_days=0), actor=ACTOR,
                                    with_trial=False)
    intent_id = new_id("pi")
    held = _hold(monkeypatch, "payment_intent_retrieve", stripe_gateway.PaymentIntentResult(
        id=intent_id, status="succeeded", amount=1500, currency="USD", customer_id=stripe_account_id(customer),
        payment_method_id="pm_held", latest_charge_id="", created=None))
    event = stripe_event("checkout.session.completed", checkout_session_object(
        id=new_id("cs"), customer=stripe_account_id(customer), amount_total=1500, payment_intent=intent_id,
        metadata={"kind": "subscription", "invoice_id": str(invoice.pk), "customer_id": str(customer.pk)}))

    outcome = _while_held(held, lambda: deliver(Client(), event), also_lock=lambda: [
        (StripeEvent, StripeEvent.objects.get().pk), (Invoice, invoice.pk), (Customer, customer.pk)])

    assert outcome["result"].status_code == 200
    customer.refresh_from_db()
    invoice.refresh_from_db()
    assert stripe_card(customer) == "pm_held"
    assert invoice.status == InvoiceStatus.PAID and invoice.subscription.status == SubscriptionStatus.ACTIVE
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED


def test_a_post_with_an_idempotency_key_calls_stripe_with_its_key_committed_and_unlocked(monkeypatch, stripe_key):
    caller = api_customer()
    stripe_account_set(caller.customer, customer_id=new_id("cus"))
    held = _hold(monkeypatch, "checkout_session_create", _session())

    def post():
        return caller.client.post("/api/v1/checkout/credit-pack/", {"pack": "small"}, format="json",
                                  HTTP_IDEMPOTENCY_KEY="held-pack")

    def own_rows():
        key = ApiIdempotencyKey.objects.get(key="held-pack")
        assert key.response_status is None  # claimed and committed, in progress
        return [(ApiIdempotencyKey, key.pk), (Invoice, Invoice.objects.get(customer=caller.customer).pk)]

    outcome = _while_held(held, post, also_lock=own_rows)

    assert outcome["result"].status_code == 201
    replay = post()
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == outcome["result"].json()
    assert Invoice.objects.filter(customer=caller.customer).count() == 1


def test_a_failed_checkout_withdraws_its_invoice_and_subscription_so_the_customer_can_retry(monkeypatch, stripe_key):
    from core.exceptions import PaymentProviderError

    customer = StripeCustomerFactory(stripe_customer_id=new_id("cus"))
    plan = PlanFactory(amount=2500, trial_days=0)

    def down(**kwargs):
        raise PaymentProviderError("Stripe request failed: timeout")

    monkeypatch.setattr(stripe_gateway, "checkout_session_create", down)
    with pytest.raises(PaymentProviderError):
        checkout_subscription_start(customer=customer, plan=plan, actor=ACTOR, success_url="https://app.example.com/a",
                                    cancel_url="https://app.example.com/b")

    invoice = Invoice.objects.get(customer=customer)
    assert invoice.status == InvoiceStatus.VOID and invoice.number  # numbered, so voided rather than deleted
    assert invoice.subscription.status == SubscriptionStatus.CANCELED
    monkeypatch.setattr(stripe_gateway, "checkout_session_create", lambda **kwargs: _session())
    again = checkout_subscription_start(customer=customer, plan=plan, actor=ACTOR,
                                        success_url="https://app.example.com/a", cancel_url="https://app.example.com/b")
    assert again.subscription.status == SubscriptionStatus.INCOMPLETE


def test_concurrent_first_ensures_store_one_stripe_customer(monkeypatch, stripe_key):
    customer = CustomerFactory()
    keys = []

    def create(**kwargs):  # Stripe answers the same customer for the same idempotency key
        keys.append(kwargs["idempotency_key"])
        return stripe_gateway.StripeCustomer(id="cus_once", email="", default_payment_method_id="", created=None)

    monkeypatch.setattr(stripe_gateway, "customer_create", create)
    ids = []

    def ensure():
        try:
            ids.append(customer_stripe_ensure(customer=Customer.objects.get(pk=customer.pk)))
        finally:
            connection.close()

    run_threads([ensure] * 4, join_timeout=60)
    assert ids == ["cus_once"] * 4 and set(keys) == {f"customer-{customer.pk}"}


def _card_payment(amount=2000) -> Payment:
    return Payment.objects.create(customer=StripeCustomerFactory(stripe_customer_id=new_id("cus")), amount=amount,
                                  currency="USD", method=PaymentMethod.STRIPE,
                                  provider="stripe", provider_payment_id=new_id("pi"),
                                  provider_charge_id=new_id("ch"), status=PaymentStatus.SUCCEEDED)


def _refund_answer(payment: Payment, amount: int, **fields) -> stripe_gateway.RefundResult:
    return stripe_gateway.RefundResult(**{"id": new_id("re"), "status": "succeeded", "amount": amount,
                                          "currency": "USD", "payment_intent_id": payment.provider_payment_id,
                                          "charge_id": payment.provider_charge_id, **fields})


def test_a_card_refund_commits_its_intent_and_calls_stripe_with_its_payment_unlocked(monkeypatch, stripe_key):
    payment = _card_payment()
    held = _hold(monkeypatch, "refund_create", _refund_answer(payment, 500))

    def own_rows():
        refund = Refund.objects.get(payment=payment)
        # Committed and visible to others before Stripe answers, its amount held back.
        assert (refund.status, refund.amount, refund.provider_refund_id) == (RefundStatus.REQUESTED, 500, None)
        return [(Payment, payment.pk), (Refund, refund.pk)]

    outcome = _while_held(held, lambda: payment_refund(payment=payment, actor=ACTOR, amount=500,
                                                        idempotency_key="held-refund"), also_lock=own_rows)

    refund = outcome["result"]
    payment.refresh_from_db()
    assert (refund.status, refund.provider_refund_id) == (RefundStatus.SUCCEEDED, held.answer.id)
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, 500)


def _refund_events(payment: Payment, refund: Refund, answer: stripe_gateway.RefundResult) -> dict[str, list[dict]]:
    """Ways Stripe tells of a refund of ours before its answer to us is recorded."""
    charge = {"id": payment.provider_charge_id, "amount": payment.amount, "amount_refunded": refund.amount,
              "payment_intent": payment.provider_payment_id}
    listed = refund_object(id=answer.id, amount=refund.amount, charge=payment.provider_charge_id,
                           payment_intent=payment.provider_payment_id) | {"metadata": answer.metadata}
    by_request = stripe_event("charge.refunded", charge_object(**charge))
    by_request["request"]["idempotency_key"] = f"refund-{refund.pk}"
    return {
        "charge-refunded-by-request-key": [by_request],
        "charge-refunded-listing-our-metadata": [
            stripe_event("charge.refunded", charge_object(**charge, refunds=[listed]))],
        "refund-created-then-updated-by-metadata": [
            stripe_event("refund.created", listed | {"status": "pending"}), stripe_event("refund.updated", listed)],
    }


@pytest.mark.parametrize("case", ["charge-refunded-by-request-key", "charge-refunded-listing-our-metadata",
                                  "refund-created-then-updated-by-metadata"])
def test_a_webhook_during_the_refund_call_settles_the_refund_exactly_once(monkeypatch, stripe_key, settings, case):
    from payments.tests.stripe_support import WEBHOOK_SECRET

    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    payment = _card_payment()
    held = _hold(monkeypatch, "refund_create", None)
    deliveries = []

    def webhooks_arrive():
        refund = Refund.objects.get(payment=payment)
        held.answer = _refund_answer(payment, 800, metadata={"refund_id": str(refund.pk),
                                                             "payment_id": str(payment.pk)})
        for event in _refund_events(payment, refund, held.answer)[case]:
            deliveries.append(deliver(Client(), event).status_code)
        refund.refresh_from_db()
        assert refund.status == RefundStatus.SUCCEEDED  # settled by the webhook while Stripe's answer is awaited
        assert Payment.objects.get(pk=payment.pk).amount_refunded == 800
        return [(Payment, payment.pk)]

    outcome = _while_held(held, lambda: payment_refund(payment=payment, actor=ACTOR, amount=800),
                          also_lock=webhooks_arrive)

    refund = outcome["result"]
    payment.refresh_from_db()
    assert set(deliveries) == {200}
    assert set(StripeEvent.objects.values_list("status", flat=True)) <= {"processed", "ignored"}
    assert (refund.status, refund.provider_refund_id) == (RefundStatus.SUCCEEDED, held.answer.id)
    assert (payment.status, payment.amount_refunded, Refund.objects.count()) == (
        PaymentStatus.PARTIALLY_REFUNDED, 800, 1)
    moves = list(refund.status_changes.order_by("id").values_list("to_status", flat=True))
    assert moves.count(RefundStatus.SUCCEEDED) == 1 and moves[-1] == RefundStatus.SUCCEEDED
