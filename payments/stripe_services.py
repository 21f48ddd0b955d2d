"""Writes that involve Stripe customers, saved cards and Checkout. Every Stripe call goes through
payments.stripe_gateway; without STRIPE_SECRET_KEY these raise PaymentProviderUnavailable before
writing anything."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.audit import Actor
from core.exceptions import InvalidOperation, PaymentProviderUnavailable
from payments import stripe_gateway
from payments.models import BillingReason, Invoice, InvoiceLineKind, InvoiceStatus
from payments.services import (
    LineSpec,
    invoice_create,
    invoice_finalize,
    invoice_lock,
    invoice_void,
    subscription_start,
)
from subscriptions.models import Customer, Plan, Subscription, SubscriptionStatus
from subscriptions.services import subscription_cancel, subscription_lock


def _require_stripe() -> None:
    if not stripe_gateway.is_configured():
        raise PaymentProviderUnavailable(stripe_gateway.NOT_CONFIGURED)


def customer_stripe_ensure(*, customer: Customer) -> str:
    """The customer's Stripe id, creating the Stripe customer the first time.

    Stripe is called with no transaction open and no row locked; the id is then stored in a short
    transaction. The idempotency key is the customer's own id, so two concurrent first calls (or a retry
    after a crash between Stripe's answer and our commit) get the same Stripe customer back, not two.
    """
    _require_stripe()
    if customer.stripe_customer_id:
        return customer.stripe_customer_id
    current = Customer.objects.filter(pk=customer.pk).values("stripe_customer_id", "email", "name").get()
    if not current["stripe_customer_id"]:
        created = stripe_gateway.customer_create(
            email=current["email"], name=current["name"], metadata={"customer_id": str(customer.pk)},
            idempotency_key=f"customer-{customer.pk}",
        )
        with transaction.atomic():
            locked = Customer.objects.select_for_update().get(pk=customer.pk)
            if not locked.stripe_customer_id:
                locked.stripe_customer_id = created.id
                locked.save(update_fields=["stripe_customer_id", "updated_at"])
        current["stripe_customer_id"] = locked.stripe_customer_id
    customer.stripe_customer_id = current["stripe_customer_id"]
    return customer.stripe_customer_id


def customer_setup_intent_create(*, customer: Customer) -> stripe_gateway.SetupIntentResult:
    """Start saving a card: the front end confirms the returned client secret with Stripe.js, and
    setup_intent.succeeded stores the card as the customer's default for renewals."""
    stripe_customer_id = customer_stripe_ensure(customer=customer)
    # Each call is a new SetupIntent; the random key still lets the SDK retry this one POST safely.
    return stripe_gateway.setup_intent_create(customer_id=stripe_customer_id,
                                              metadata={"customer_id": str(customer.pk)},
                                              idempotency_key=f"setup-intent-{customer.pk}-{uuid.uuid4().hex}")


@transaction.atomic
def customer_default_payment_method_set(*, customer: Customer, payment_method_id: str, observed_at: datetime,
                                        actor: Actor) -> bool:
    """Remember the card renewals are charged to, unless a newer message already set another one.
    Returns whether it changed."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    set_at = customer.stripe_default_payment_method_set_at
    if set_at is not None and observed_at < set_at:
        return False
    changed = customer.stripe_default_payment_method_id != payment_method_id
    customer.stripe_default_payment_method_id = payment_method_id
    customer.stripe_default_payment_method_set_at = observed_at
    customer.save(update_fields=["stripe_default_payment_method_id", "stripe_default_payment_method_set_at",
                                 "updated_at"])
    return changed


@dataclass(frozen=True)
class CheckoutStart:
    invoice: Invoice
    session: stripe_gateway.CheckoutSessionResult
    subscription: Subscription | None = None


def _checkout_intent_record(*, invoice: Invoice) -> Invoice:
    """In the transaction that issues the invoice: take it out of the billing run's off-session
    collection, because the customer is paying it on a Checkout page."""
    invoice = invoice_lock(invoice_id=invoice.pk)
    invoice.next_attempt_at = None
    invoice.metadata = {**invoice.metadata, "collection": "checkout"}
    invoice.save(update_fields=["next_attempt_at", "metadata", "updated_at"])
    return invoice


def _checkout_session_open(*, invoice: Invoice, kind: str, actor: Actor, success_url: str, cancel_url: str,
                           save_payment_method: bool) -> stripe_gateway.CheckoutSessionResult:
    """Open the Checkout page for a committed, numbered invoice: Stripe is called with no transaction
    open (no invoice-number or row lock held while it answers), the session is recorded in a short
    transaction, and when Stripe fails the invoice (and a subscription waiting for it) is withdrawn."""
    lines = [stripe_gateway.CheckoutLine(name=f"Invoice {invoice.number}", unit_amount=invoice.amount_due)]
    try:
        session = stripe_gateway.checkout_session_create(
            customer_id=invoice.customer.stripe_customer_id, lines=lines, currency=invoice.currency,
            success_url=success_url, cancel_url=cancel_url, save_payment_method=save_payment_method,
            metadata={"kind": kind, "invoice_id": str(invoice.pk), "customer_id": str(invoice.customer_id)},
            # One session per invoice, whoever asks again for it.
            idempotency_key=f"checkout-invoice-{invoice.pk}",
        )
    except Exception:
        _checkout_withdraw(invoice=invoice, actor=actor)
        raise
    with transaction.atomic():
        locked = invoice_lock(invoice_id=invoice.pk)
        locked.metadata = {**locked.metadata, "checkout_session_id": session.id}
        locked.save(update_fields=["metadata", "updated_at"])
    return session


def _checkout_withdraw(*, invoice: Invoice, actor: Actor) -> None:
    """No Checkout page could be opened: void the invoice nobody can pay and cancel the subscription
    that was waiting for it, so the customer can simply try again."""
    with transaction.atomic():
        locked = invoice_lock(invoice_id=invoice.pk)
        if locked.status != InvoiceStatus.OPEN or locked.amount_paid:
            return
        invoice_void(invoice=locked, actor=actor, reason="checkout could not be opened")
        if locked.subscription_id:
            subscription = subscription_lock(subscription_id=locked.subscription_id)
            if subscription.status == SubscriptionStatus.INCOMPLETE:
                subscription_cancel(subscription=subscription, actor=actor, reason="checkout could not be opened")


def checkout_subscription_start(*, customer: Customer, plan: Plan, actor: Actor, success_url: str,
                                cancel_url: str, now: datetime | None = None) -> CheckoutStart:
    """Subscribe through Stripe Checkout: the subscription starts incomplete with its first invoice,
    Checkout collects that invoice and saves the card for renewals, and checkout.session.completed
    pays the invoice, which activates the subscription.

    The subscription and its numbered invoice commit first (the intent), then Stripe is called outside
    any transaction, then the session is recorded (or, when Stripe fails, both are withdrawn)."""
    if plan.is_free:
        raise InvalidOperation("A free plan needs no checkout; subscribe directly.", code="nothing_to_pay")
    customer_stripe_ensure(customer=customer)
    with transaction.atomic():
        subscription, invoice = subscription_start(customer=customer, plan=plan, actor=actor, now=now,
                                                   with_trial=False)
        _checkout_intent_record(invoice=invoice)
    session = _checkout_session_open(invoice=invoice, kind="subscription", actor=actor, success_url=success_url,
                                     cancel_url=cancel_url, save_payment_method=True)
    invoice.refresh_from_db()
    return CheckoutStart(invoice=invoice, session=session, subscription=subscription)


def checkout_credit_pack_start(*, customer: Customer, credits: int, amount: int, actor: Actor, success_url: str,
                               cancel_url: str, now: datetime | None = None) -> CheckoutStart:
    """Sell `credits` prepaid credits for `amount` minor units through Checkout; the credits are
    granted when the invoice is paid (payments.services.credit_pack_fulfill). The numbered invoice
    commits before Stripe is called, as for a subscription."""
    if credits <= 0 or amount <= 0:
        raise InvalidOperation("A credit pack has a positive number of credits and a positive price.",
                               code="invalid_amount")
    customer_stripe_ensure(customer=customer)
    now = now or timezone.now()
    with transaction.atomic():
        invoice = invoice_create(
            customer=customer, billing_reason=BillingReason.CREDIT_PACK,
            lines=[LineSpec(kind=InvoiceLineKind.CREDIT_PACK, description=f"{credits} credits",
                            unit_amount=Decimal(amount), credits=credits)],
        )
        invoice = invoice_finalize(invoice=invoice, actor=actor, now=now)
        _checkout_intent_record(invoice=invoice)
    session = _checkout_session_open(invoice=invoice, kind="credit_pack", actor=actor, success_url=success_url,
                                     cancel_url=cancel_url, save_payment_method=False)
    invoice.refresh_from_db()
    return CheckoutStart(invoice=invoice, session=session)
