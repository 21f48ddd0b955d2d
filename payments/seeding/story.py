"""One demo customer's story: its state while it is told, and how money comes in and goes back.

Shared by the lifecycle stories (payments.seeding.demo) and the activity between renewals
(payments.seeding.activity).
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction

from core.audit import Actor
from payments.billing.common import RUN_ACTOR
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
from payments.providers.stripe.gateway import ChargeResult, PaymentIntentResult
from payments.providers.stripe.sync import payment_sync_charge_refunds, payment_sync_intent
from payments.seeding.catalog import Catalog, major_to_minor
from payments.seeding.paypal_story import paypal_payment, paypal_refund
from payments.services import (
    LineSpec,
    invoice_create,
    invoice_finalize,
    invoice_lock,
    invoice_void,
    payment_lock,
    payment_record_manual,
    payment_refund,
)
from subscriptions.models import Customer, Plan, SubscriptionStatus
from subscriptions.services import subscription_lock, subscription_transition
from usage.models import Meter

S = SubscriptionStatus
M = PaymentMethod
STRIPE_WEBHOOK = Actor.system("stripe-webhook")
# When a declined card is tried again, as the dunning schedule would.
RETRY_AFTER = timedelta(days=3)


@dataclass
class Story:
    index: int
    rng: random.Random
    customer: Customer
    as_of: datetime
    catalog: Catalog
    staff: Actor
    method: str
    # Extra credit events the first customer is given so the credit screens show every kind of row.
    forced_credit_kinds: list[str] = field(default_factory=list)
    life_start: datetime | None = None
    life_end: datetime | None = None
    sequence: int = 0

    @property
    def me(self) -> Actor:
        return Actor.of_user(self.customer.user)

    def next_ref(self, prefix: str) -> str:
        """Deterministic, globally unique fake provider ids and references (pi_demo007x003)."""
        self.sequence += 1
        return f"{prefix}_demo{self.index:03d}x{self.sequence:03d}"

    def moment(self, start: datetime, end: datetime) -> datetime:
        span = max(int((end - start).total_seconds()), 1)
        return start + timedelta(seconds=self.rng.randrange(span))

    def meter(self, code: str) -> Meter:
        return self.catalog.meters[code]

    def plan(self, code: str) -> Plan:
        return self.catalog.plans[code]


def plan_tier(plan: Plan) -> str:
    """free, basic, pro or enterprise, whatever the billing interval."""
    return plan.code.removesuffix("-yearly")


# ---------------------------------------------------------------------------------------- money in


def collect(story: Story, invoice: Invoice, at: datetime) -> None:
    """The customer pays an open invoice with its usual method."""
    invoice.refresh_from_db()
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_due == 0:
        return
    if story.method == M.STRIPE:
        card_payment(story, invoice, succeed=True, at=at)
        return
    if story.method == M.PAYPAL:
        paypal_payment(story, invoice, succeed=True, at=at)
        return
    label = {M.CHECK: "check", M.BANK_TRANSFER: "transfer", M.CASH: "receipt"}[story.method]
    reference = f"{label} {story.next_ref(label[:2]).upper()}"
    payment_record_manual(customer=story.customer, amount=invoice.amount_due, method=story.method, actor=story.staff,
                          invoice=invoice, reference=reference, now=at)


def card_declined(story: Story, invoice: Invoice, at: datetime) -> None:
    """A card attempt fails: the invoice stays open for another attempt and a live subscription falls
    past due."""
    if story.method == M.PAYPAL:
        paypal_payment(story, invoice, succeed=False, at=at)
    else:
        card_payment(story, invoice, succeed=False, at=at)
    with transaction.atomic():
        invoice = invoice_lock(invoice_id=invoice.pk)
        invoice.attempt_count += 1
        invoice.next_attempt_at = at + RETRY_AFTER
        invoice.save(update_fields=["attempt_count", "next_attempt_at", "updated_at"])
    if invoice.subscription_id is None:
        return
    with transaction.atomic():
        subscription = subscription_lock(subscription_id=invoice.subscription_id)
        if subscription.status in (S.ACTIVE, S.TRIALING):
            subscription_transition(subscription=subscription, to_status=S.PAST_DUE, actor=RUN_ACTOR,
                                    reason=f"payment of {invoice.number} failed", now=at)


def invoice_issued_in_error(story: Story, at: datetime) -> None:
    """A manual invoice staff finalized by mistake and voided two hours later."""
    invoice = invoice_create(customer=story.customer, lines=[LineSpec(
        kind=InvoiceLineKind.ADJUSTMENT, description="Onboarding workshop",
        unit_amount=Decimal(major_to_minor(amount=Decimal(150), currency=story.customer.currency)))])
    invoice = invoice_finalize(invoice=invoice, actor=story.staff, now=at)
    invoice_void(invoice=invoice, actor=story.staff, reason="issued in error: the workshop was included",
                 now=at + timedelta(hours=2))


def refund_one(story: Story, *, full: bool) -> None:
    """Give back the latest payment in full (a double charge) or half of the first (downtime)."""
    succeeded = Payment.objects.filter(customer=story.customer, status=PaymentStatus.SUCCEEDED).order_by(
        "succeeded_at", "id")
    payment = succeeded.last() if full else succeeded.first()
    if payment is None:
        return
    amount = payment.amount if full else max(payment.amount // 2, 1)
    at = min(payment.succeeded_at + timedelta(days=story.rng.randint(1, 5)), story.as_of)
    reason = "charged twice by mistake" if full else "partial refund for downtime"
    if payment.method == M.STRIPE:
        card_refund(story, payment, amount=amount, reason=reason, at=at)
    elif payment.method == M.PAYPAL:
        paypal_refund(story, payment, amount=amount, reason=reason, at=at)
    else:
        payment_refund(payment=payment, actor=story.staff, amount=amount, reason=reason, now=at,
                       idempotency_key=story.next_ref("refund"))


# ---------------------------------------------------------------------------------------- card payments
# What Stripe would have told us, applied by the same code that applies its API answers and webhooks
# (payments.providers.stripe.sync); the ids are fake (pi_demo..., ch_demo...) and nothing calls the network.


def _intent(payment: Payment, *, status: str, charge_id: str, failure_code: str = "",
            failure_message: str = "") -> PaymentIntentResult:
    customer = payment.customer
    return PaymentIntentResult(
        id=payment.stripe_payment_intent_id, status=status, amount=payment.amount, currency=payment.currency,
        customer_id=customer.stripe_customer_id, payment_method_id=customer.stripe_default_payment_method_id,
        latest_charge_id=charge_id, created=payment.created_at, failure_code=failure_code,
        failure_message=failure_message, metadata={"payment_id": str(payment.pk)})


@transaction.atomic
def card_payment(story: Story, invoice: Invoice, *, succeed: bool, at: datetime) -> Payment:
    """A PaymentIntent for the invoice's amount due: processing, then succeeded or declined."""
    payment = Payment.objects.create(customer=story.customer, invoice=invoice, amount=invoice.amount_due,
                                     currency=invoice.currency, method=PaymentMethod.STRIPE,
                                     stripe_payment_intent_id=story.next_ref("pi"), metadata={"demo": True})
    payment = payment_lock(payment_id=payment.pk)
    payment_sync_intent(payment=payment, intent=_intent(payment, status="processing", charge_id=""),
                        observed_at=at, actor=STRIPE_WEBHOOK, reason="payment_intent.processing", now=at)
    done = at + timedelta(seconds=3)
    if succeed:
        intent = _intent(payment, status="succeeded", charge_id=story.next_ref("ch"))
        reason = "payment_intent.succeeded"
    else:
        intent = _intent(payment, status="requires_payment_method", charge_id="", failure_code="card_declined",
                         failure_message="Your card has insufficient funds.")
        reason = "payment_intent.payment_failed"
    return payment_sync_intent(payment=payment, intent=intent, observed_at=done, actor=STRIPE_WEBHOOK,
                               reason=reason, now=done).payment


@transaction.atomic
def card_refund(story: Story, payment: Payment, *, amount: int, reason: str, at: datetime) -> None:
    """Staff refund a card payment: the refund waits for Stripe, and charge.refunded counts it."""
    payment = payment_lock(payment_id=payment.pk)
    refund_id = story.next_ref("re")
    refund = Refund(payment=payment, amount=amount, currency=payment.currency, status=RefundStatus.PENDING,
                    stripe_refund_id=refund_id, idempotency_key=f"seed:{refund_id}", reason=reason[:500])
    refund.stamp(story.staff)
    refund.save()
    charge = ChargeResult(id=payment.stripe_charge_id, status="succeeded", amount=payment.amount,
                          amount_refunded=payment.amount_refunded + amount, currency=payment.currency,
                          payment_intent_id=payment.stripe_payment_intent_id, paid=True, created=payment.succeeded_at)
    payment_sync_charge_refunds(payment=payment, charge=charge, observed_at=at, actor=STRIPE_WEBHOOK, now=at)
