"""One demo customer's story: its state while it is told, and how money comes in and goes back.

Shared by the lifecycle stories (payments.seeding.demo) and the activity between renewals
(payments.seeding.activity).
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction

from billing_project.audit import Actor
from payments.models import Invoice, InvoiceLineKind, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from payments.seeding.catalog import Catalog, major_to_minor
from payments.seeding.history import BILLING_RUN, card_payment, card_refund
from payments.services import (
    LineSpec,
    invoice_create,
    invoice_finalize,
    invoice_void,
    payment_record_manual,
    payment_refund,
)
from subscriptions.models import Customer, Plan, SubscriptionStatus
from subscriptions.services import subscription_lock, subscription_transition
from usage.models import Meter

S = SubscriptionStatus
M = PaymentMethod


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
        card_payment(customer=story.customer, invoice=invoice, succeed=True, at=at,
                     payment_intent_id=story.next_ref("pi"), charge_id=story.next_ref("ch"))
        return
    label = {M.CHECK: "check", M.BANK_TRANSFER: "transfer", M.CASH: "receipt"}[story.method]
    reference = f"{label} {story.next_ref(label[:2]).upper()}"
    payment_record_manual(customer=story.customer, amount=invoice.amount_due, method=story.method, actor=story.staff,
                          invoice=invoice, reference=reference, now=at)


def card_declined(story: Story, invoice: Invoice, at: datetime) -> None:
    """A card attempt fails: the invoice stays open for another attempt and a live subscription falls
    past due."""
    card_payment(customer=story.customer, invoice=invoice, succeed=False, at=at,
                 payment_intent_id=story.next_ref("pi"), charge_id=None)
    if invoice.subscription_id is None:
        return
    with transaction.atomic():
        subscription = subscription_lock(subscription_id=invoice.subscription_id)
        if subscription.status in (S.ACTIVE, S.TRIALING):
            subscription_transition(subscription=subscription, to_status=S.PAST_DUE, actor=BILLING_RUN,
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
        card_refund(payment=payment, amount=amount, actor=story.staff, reason=reason, at=at,
                    refund_id=story.next_ref("re"))
    else:
        payment_refund(payment=payment, actor=story.staff, amount=amount, reason=reason, now=at,
                       idempotency_key=story.next_ref("refund"))
