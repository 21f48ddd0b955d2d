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
from payments.providers import (
    Capability,
    ChargeResult,
    PaymentProvider,
    RefundResult,
    provider_installed_for,
    providers_installed,
)
from payments.providers.manual.services import payment_record_manual
from payments.seeding.catalog import Catalog, major_to_minor
from payments.services import (
    LineSpec,
    invoice_create,
    invoice_finalize,
    invoice_lock,
    invoice_void,
    payment_create,
    payment_lock,
    payment_refund,
    refund_counted,
)
from subscriptions.models import Customer, Plan, SubscriptionStatus
from subscriptions.services import subscription_lock, subscription_transition
from usage.models import Meter

S = SubscriptionStatus
M = PaymentMethod
# A story's method when the customer pays by saved card, through `card_rail()`.
CARD = "card"
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
    # The rail a CARD story's saved method is at ("" for `card_rail()`): some demo customers pay with a
    # wallet at another rail instead of a card.
    rail: str = ""
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
    """free, basic, pro or enterprise, whatever the billing interval or currency (pro-yearly, pro-yer)."""
    return plan.code.split("-", 1)[0]


# ---------------------------------------------------------------------------------------- money in


def collect(story: Story, invoice: Invoice, at: datetime) -> None:
    """The customer pays an open invoice with its usual method."""
    invoice.refresh_from_db()
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_due == 0:
        return
    if story.method == CARD:
        # A card story exists only when a card rail is installed (demo._card_saved).
        card_payment(story, invoice, rail=story_rail(story), succeed=True, at=at)
        return
    label = {M.CHECK: "check", M.BANK_TRANSFER: "transfer", M.CASH: "receipt"}[story.method]
    reference = f"{label} {story.next_ref(label[:2]).upper()}"
    payment_record_manual(customer=story.customer, amount=invoice.amount_due, method=story.method, actor=story.staff,
                          invoice=invoice, reference=reference, now=at)


def card_declined(story: Story, invoice: Invoice, at: datetime) -> None:
    """A card attempt fails: the invoice stays open for another attempt and a live subscription falls
    past due. Without a card rail installed the attempt leaves no payment, only its dunning state."""
    rail = story_rail(story)
    if rail is not None:
        card_payment(story, invoice, rail=rail, succeed=False, at=at)
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
    rail = provider_installed_for(payment.provider)
    if rail is not None and Capability.REFUNDS in rail.capabilities:
        card_refund(story, payment, rail=rail, amount=amount, reason=reason, at=at)
    else:
        payment_refund(payment=payment, actor=story.staff, amount=amount, reason=reason, now=at,
                       idempotency_key=story.next_ref("refund"))


# ---------------------------------------------------------------------------------------- card payments
# What the card rail would have answered, recorded through the provider contract's applies (the same code
# that records its API answers); the ids are fake (pi_demo..., ch_demo...) and nothing calls the network.


def card_rail() -> PaymentProvider | None:
    """The rail demo card customers pay through: the first installed one that charges saved cards
    off-session, configured or not (the demo never calls it); None when only manual rails are installed."""
    return next((rail for rail in providers_installed() if Capability.OFF_SESSION_CHARGE in rail.capabilities),
                None)


def story_rail(story: Story) -> PaymentProvider | None:
    """The rail a CARD story pays through: its own (a wallet saved at another rail) or the card rail."""
    return provider_installed_for(story.rail) if story.rail else card_rail()


def _webhook(rail: PaymentProvider) -> Actor:
    return Actor.system(f"{rail.code}-webhook")


def _charge(payment: Payment, rail: PaymentProvider, *, status: PaymentStatus, charge_reference: str = "",
            failure_code: str = "", failure_message: str = "") -> ChargeResult:
    """The rail's answer in the contract's terms: `status` is ours, and the demo's word is the same."""
    return ChargeResult(provider=rail.code, reference=payment.provider_payment_id, status=status,
                        provider_status=status, amount=payment.amount, currency=payment.currency,
                        failure_code=failure_code, failure_message=failure_message, charge_reference=charge_reference)


@transaction.atomic
def card_payment(story: Story, invoice: Invoice, *, rail: PaymentProvider, succeed: bool, at: datetime) -> Payment:
    """A charge of the invoice's amount due through the card rail: processing, then succeeded or declined."""
    payment = payment_create(customer=story.customer, invoice=invoice, amount=invoice.amount_due,
                             currency=invoice.currency, method=rail.code, provider=rail.code,
                             provider_payment_id=story.next_ref("pi"), metadata={"demo": True})
    payment = payment_lock(payment_id=payment.pk)
    rail.charge_apply(payment=payment, result=_charge(payment, rail, status=PaymentStatus.PROCESSING),
                      observed_at=at, actor=_webhook(rail), reason="payment processing", now=at)
    done = at + timedelta(seconds=3)
    if succeed:
        result = _charge(payment, rail, status=PaymentStatus.SUCCEEDED, charge_reference=story.next_ref("ch"))
        reason = "payment succeeded"
    else:
        result = _charge(payment, rail, status=PaymentStatus.FAILED, failure_code="card_declined",
                         failure_message="Your card has insufficient funds.")
        reason = "payment failed"
    rail.charge_apply(payment=payment, result=result, observed_at=done, actor=_webhook(rail), reason=reason, now=done)
    return payment


@transaction.atomic
def card_refund(story: Story, payment: Payment, *, rail: PaymentProvider, amount: int, reason: str,
                at: datetime) -> None:
    """Staff refund a card payment: the refund is requested, then the rail's answer that it succeeded is
    recorded."""
    payment = payment_lock(payment_id=payment.pk)
    refund_id = story.next_ref("re")
    refund = Refund(payment=payment, amount=amount, currency=payment.currency, status=RefundStatus.REQUESTED,
                    provider=rail.code, idempotency_key=f"seed:{refund_id}", reason=reason[:500])
    refund.stamp(story.staff)
    refund.save()
    refund_counted(refund_id=refund.pk)
    result = RefundResult(provider=rail.code, reference=refund_id, status=RefundStatus.SUCCEEDED,
                          provider_status=RefundStatus.SUCCEEDED, amount=amount, currency=payment.currency)
    rail.refund_apply(payment=payment, refund=refund, result=result, actor=_webhook(rail), reason=reason, now=at)
