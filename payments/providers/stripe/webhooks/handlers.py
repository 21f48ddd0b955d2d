"""One handler per Stripe event type. Each reads `event.payload["data"]["object"]` through the gateway's
dataclasses, locks what it changes, and returns whether it changed anything and why not.

Handlers are safe to run again (replay): every write goes through a guard that recognises a message
already applied (payment state machine and provider_updated_at, cumulative refunds matched by
the Stripe refund id or our refund id, refund statuses that only move forward, dispute records keyed by
dispute id, idempotent credit grants).
A handler raises when the event names one of our rows that does not exist yet (Stripe can be faster
than our commit): the event is marked failed and a replay applies it once the row is there.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import InvalidOperation
from payments.models import Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus, ProviderAccount, Refund
from payments.providers.stripe import gateway as stripe_gateway
from payments.providers.stripe.gateway import (
    ChargeResult,
    CheckoutSessionResult,
    DisputeResult,
    PaymentIntentResult,
    RefundResult,
    SetupIntentResult,
    StripeCustomer,
)
from payments.providers.stripe.models import STRIPE, StripeEvent
from payments.providers.stripe.services import customer_default_payment_method_set
from payments.providers.stripe.sync import (
    payment_record_dispute,
    payment_sync_charge_refunds,
    payment_sync_intent,
    refund_apply_stripe,
)
from payments.selectors import provider_account_by_reference
from payments.services import (
    invoice_lock,
    invoice_void,
    payment_create,
    payment_lock,
    refund_id_from_idempotency_key,
)
from payments.services.payment_sync import payment_sync_status
from subscriptions.models import SubscriptionStatus
from subscriptions.services import subscription_cancel, subscription_lock


@dataclass(frozen=True)
class Outcome:
    applied: bool
    note: str = ""


class ReferenceNotFound(LookupError):
    """The event names a row of ours that is not (yet) there."""


def _object(event: StripeEvent) -> dict:
    return event.payload["data"]["object"]


def _observed_at(event: StripeEvent) -> datetime:
    return event.provider_created_at or event.received_at


def _reason(event: StripeEvent) -> str:
    return f"{event.type} ({event.event_id})"


def _stripe_payments():
    return Payment.objects.filter(provider=STRIPE)


def _our_id(metadata: dict, key: str) -> int | None:
    value = str(metadata.get(key) or "")
    return int(value) if value.isdigit() else None


def _payment_for_intent(intent: PaymentIntentResult) -> Payment | None:
    found = _stripe_payments().filter(provider_payment_id=intent.id).values_list("pk", flat=True).first()
    if found is None:
        # Collection stores the PaymentIntent id after Stripe answers; the payment id in the metadata
        # finds the payment when the webhook wins that race (or the answer was lost to a timeout).
        payment_id = _our_id(intent.metadata, "payment_id")
        if payment_id is None:
            return None
        found = _stripe_payments().filter(pk=payment_id).values_list("pk", flat=True).first()
        if found is None:
            raise ReferenceNotFound(_("payment #%(payment)s named by %(reference)s does not exist")
                                    % {"payment": payment_id, "reference": intent.id})
    payment = payment_lock(payment_id=found)
    if payment.provider_payment_id not in (None, "", intent.id):
        raise InvalidOperation(_("payment #%(payment)s belongs to %(ours)s, not %(theirs)s")
                               % {"payment": payment.pk, "ours": payment.provider_payment_id, "theirs": intent.id},
                               code="payment_intent_mismatch")
    return payment


def handle_payment_intent(*, event: StripeEvent, actor: Actor) -> Outcome:
    """payment_intent.succeeded / processing / payment_failed / canceled: the object's own status says
    where the payment is; stale or backwards moves are recorded and skipped."""
    intent = PaymentIntentResult.from_payload(_object(event))
    payment = _payment_for_intent(intent)
    if payment is None:
        return Outcome(False, f"no payment of ours for {intent.id}")
    result = payment_sync_intent(payment=payment, intent=intent, observed_at=_observed_at(event), actor=actor,
                                 reason=_reason(event))
    return Outcome(result.applied, result.note)


def _payment_for_charge(*, charge_id: str, payment_intent_id: str) -> Payment | None:
    found = None
    if payment_intent_id:
        found = _stripe_payments().filter(provider_payment_id=payment_intent_id).values_list("pk", flat=True).first()
    if found is None and charge_id:
        found = _stripe_payments().filter(provider_charge_id=charge_id).values_list("pk", flat=True).first()
    return payment_lock(payment_id=found) if found is not None else None


def _request_key(event: StripeEvent) -> str:
    """The idempotency key of the API request that caused the event (ours is `refund-<id>` for a refund)."""
    request = event.payload.get("request")
    key = request.get("idempotency_key") if isinstance(request, dict) else ""
    return key if isinstance(key, str) else ""


def handle_charge_refunded(*, event: StripeEvent, actor: Actor) -> Outcome:
    charge = ChargeResult.from_payload(_object(event))
    payment = _payment_for_charge(charge_id=charge.id, payment_intent_id=charge.payment_intent_id)
    if payment is None:
        return Outcome(False, f"no payment of ours for {charge.id}")
    result = payment_sync_charge_refunds(payment=payment, charge=charge, observed_at=_observed_at(event), actor=actor,
                                         request_key=_request_key(event))
    return Outcome(result.applied, result.note)


def handle_refund(*, event: StripeEvent, actor: Actor) -> Outcome:
    """refund.created / refund.updated / refund.failed (and the older charge.refund.updated): the state of
    one of our refunds, found by its Stripe id, or by our id in its metadata or in the request's key when
    it comes before we stored the Stripe id. Refunds made in the Stripe dashboard are counted by
    charge.refunded, which knows the charge's cumulative amount."""
    stripe_refund = RefundResult.from_payload(_object(event))
    our_id = _our_id(stripe_refund.metadata, "refund_id") or refund_id_from_idempotency_key(_request_key(event))
    found = Refund.objects.filter(provider=STRIPE, provider_refund_id=stripe_refund.id).values_list(
        "pk", "payment_id").first()
    if found is None and our_id is not None:
        found = Refund.objects.filter(pk=our_id, payment__provider=STRIPE).values_list(
            "pk", "payment_id").first()
        if found is None:
            raise ReferenceNotFound(_("refund #%(refund)s named by %(reference)s does not exist")
                                    % {"refund": our_id, "reference": stripe_refund.id})
    if found is None:
        return Outcome(False, f"{stripe_refund.id} is not a refund of ours; charge.refunded counts it")
    payment = payment_lock(payment_id=found[1])
    if stripe_refund.payment_intent_id and payment.provider_payment_id != stripe_refund.payment_intent_id:
        raise InvalidOperation(_("%(reference)s refunds %(intent)s, but refund #%(refund)s is of payment #%(payment)s")
                               % {"reference": stripe_refund.id, "intent": stripe_refund.payment_intent_id,
                                  "refund": found[0], "payment": payment.pk}, code="payment_intent_mismatch")
    refund = Refund.objects.get(pk=found[0])
    applied = refund_apply_stripe(payment=payment, refund=refund, result=stripe_refund, actor=actor,
                                  reason=_reason(event))
    return Outcome(applied, "" if applied else f"refund #{refund.pk} is already {refund.status}")


def handle_dispute_created(*, event: StripeEvent, actor: Actor) -> Outcome:
    dispute = DisputeResult.from_payload(_object(event))
    payment = _payment_for_charge(charge_id=dispute.charge_id, payment_intent_id=dispute.payment_intent_id)
    if payment is None:
        return Outcome(False, f"no payment of ours for dispute {dispute.id}")
    result = payment_record_dispute(payment=payment, dispute=dispute, actor=actor)
    return Outcome(result.applied, result.note)


CHECKOUT_KINDS = ("subscription", "credit_pack")
# An open invoice paid on Checkout (payments.checkout.checkout_invoice_start) is recorded when completed;
# an expired session leaves it alone: its collection resumes after the hold.
PAID_CHECKOUT_KINDS = (*CHECKOUT_KINDS, "invoice")


@dataclass(frozen=True)
class CardLookup:
    """What Stripe said about the card a subscription Checkout saved, asked before the event's
    transaction opens (no lock is held while Stripe answers)."""

    payment_method_id: str = ""
    error: Exception | None = None
    # Why Stripe was not asked, for the event's note.
    skipped: str = ""


def checkout_completed_card_lookup(*, event: StripeEvent) -> CardLookup | None:
    """The card of a completed subscription Checkout, which the session does not carry but its
    PaymentIntent does (saved for off-session use); None when no card is wanted. Runs outside any
    transaction; a Stripe failure is handed to the handler, which fails the event for a replay."""
    session = CheckoutSessionResult.from_payload(_object(event))
    invoice_id = _our_id(session.metadata, "invoice_id")
    if session.metadata.get("kind") != "subscription" or invoice_id is None or not session.payment_intent_id:
        return None
    has_card = ProviderAccount.objects.filter(customer__invoices__pk=invoice_id, provider=STRIPE).exclude(
        default_payment_method_id="")
    if has_card.exists():
        return None
    if not stripe_gateway.is_configured():
        return CardLookup(skipped="card not saved: the Stripe API key is not configured")
    try:
        intent = stripe_gateway.payment_intent_retrieve(payment_intent_id=session.payment_intent_id)
    except Exception as exc:  # recorded on the event by the handler, which runs under the event's lock
        return CardLookup(error=exc)
    return CardLookup(payment_method_id=intent.payment_method_id)


def handle_checkout_completed(*, event: StripeEvent, actor: Actor, prepared: CardLookup | None = None) -> Outcome:
    """A Checkout page of ours was completed: record its payment against the invoice it was opened for.
    Paying the invoice activates the subscription or grants the credit pack through the usual flow; the
    card a subscription Checkout saved (looked up in Stripe beforehand, `prepared`) becomes the default."""
    session = CheckoutSessionResult.from_payload(_object(event))
    kind = session.metadata.get("kind")
    invoice_id = _our_id(session.metadata, "invoice_id")
    if kind not in PAID_CHECKOUT_KINDS or invoice_id is None:
        return Outcome(False, f"checkout session {session.id} was not opened by us")
    invoice = Invoice.objects.select_related("customer").filter(pk=invoice_id).first()
    if invoice is None:
        raise ReferenceNotFound(_("invoice #%(invoice)s named by %(reference)s does not exist")
                                % {"invoice": invoice_id, "reference": session.id})
    customer = invoice.customer
    account = provider_account_by_reference(provider=STRIPE, provider_customer_id=session.customer_id)
    if account is None or account.customer_id != customer.pk:
        raise InvalidOperation(_("checkout session %(session)s is for %(account)s, which is not invoice #%(invoice)s's "
                                 "customer's Stripe customer")
                               % {"session": session.id, "account": session.customer_id, "invoice": invoice.pk},
                               code="customer_mismatch")
    if session.payment_status == "no_payment_required" or not session.payment_intent_id or session.amount_total <= 0:
        return Outcome(False, f"checkout session {session.id} collected nothing")
    if prepared is not None and prepared.error is not None:
        raise prepared.error
    found = _stripe_payments().filter(provider_payment_id=session.payment_intent_id).values_list("pk", flat=True)
    payment_pk = found.first()
    if payment_pk is None:
        payment_pk = payment_create(
            customer=customer, invoice=invoice, amount=session.amount_total,
            currency=session.currency or invoice.currency, method=PaymentMethod.STRIPE, provider=STRIPE,
            provider_payment_id=session.payment_intent_id, metadata={"checkout_session_id": session.id},
        ).pk
    payment = payment_lock(payment_id=payment_pk)
    # "unpaid" on completion means a delayed method (a bank debit): the money is on its way.
    to_status = PaymentStatus.SUCCEEDED if session.payment_status == "paid" else PaymentStatus.PROCESSING
    provider_data = {"checkout_session": session.id, "payment_status": session.payment_status,
                     "payment_intent": session.payment_intent_id}
    result = payment_sync_status(payment=payment, to_status=to_status, observed_at=_observed_at(event), actor=actor,
                                 reason=_reason(event), provider_data=provider_data)
    notes = [result.note, prepared.skipped if prepared else ""]
    if kind == "subscription" and prepared is not None and prepared.payment_method_id:
        customer_default_payment_method_set(customer=customer, payment_method_id=prepared.payment_method_id,
                                            observed_at=_observed_at(event), actor=actor)
    return Outcome(result.applied, "; ".join(n for n in notes if n))


def handle_checkout_expired(*, event: StripeEvent, actor: Actor) -> Outcome:
    """The customer left a Checkout page of ours unpaid until it expired: void its invoice and cancel the
    subscription that was waiting for it, so neither lingers open. Anything paid meanwhile keeps both."""
    session = CheckoutSessionResult.from_payload(_object(event))
    invoice_id = _our_id(session.metadata, "invoice_id")
    if session.metadata.get("kind") not in CHECKOUT_KINDS or invoice_id is None:
        return Outcome(False, f"checkout session {session.id} was not opened by us")
    invoice = invoice_lock(invoice_id=invoice_id)
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_paid or invoice.payments.exclude(
            status__in=[PaymentStatus.FAILED, PaymentStatus.CANCELED]).exists():
        return Outcome(False, f"invoice #{invoice.pk} is {invoice.status} or has payments: kept")
    if invoice.metadata.get("checkout_session_id") not in (None, session.id):
        return Outcome(False, f"invoice #{invoice.pk} was reopened in another checkout session")
    invoice_void(invoice=invoice, actor=actor, reason=f"checkout session {session.id} expired")
    if invoice.subscription_id:
        subscription = subscription_lock(subscription_id=invoice.subscription_id)
        if subscription.status == SubscriptionStatus.INCOMPLETE:
            subscription_cancel(subscription=subscription, actor=actor, reason="first invoice never paid")
    return Outcome(True)


def handle_setup_intent_succeeded(*, event: StripeEvent, actor: Actor) -> Outcome:
    setup = SetupIntentResult.from_payload(_object(event))
    if not setup.payment_method_id:
        return Outcome(False, f"{setup.id} saved no payment method")
    account = provider_account_by_reference(provider=STRIPE, provider_customer_id=setup.customer_id)
    customer = account.customer if account is not None else None
    if customer is None:
        our_id = _our_id(setup.metadata, "customer_id")
        if our_id is None:
            return Outcome(False, f"no customer of ours for {setup.customer_id or setup.id}")
        # Our customer asked for this SetupIntent, but its Stripe id is not committed yet.
        raise ReferenceNotFound(_("customer #%(customer)s has no Stripe customer %(stripe_customer)s yet")
                                % {"customer": our_id, "stripe_customer": setup.customer_id})
    changed = customer_default_payment_method_set(customer=customer, payment_method_id=setup.payment_method_id,
                                                  observed_at=_observed_at(event), actor=actor)
    return Outcome(changed, "" if changed else f"default card of customer #{customer.pk} unchanged")


def handle_customer_updated(*, event: StripeEvent, actor: Actor) -> Outcome:
    """Only the default card is taken from Stripe (it can be changed in Stripe's customer portal); name
    and email stay ours, as our database is the source of truth."""
    stripe_customer = StripeCustomer.from_payload(_object(event))
    account = provider_account_by_reference(provider=STRIPE, provider_customer_id=stripe_customer.id)
    if account is None:
        return Outcome(False, f"no customer of ours for {stripe_customer.id}")
    customer = account.customer
    if not stripe_customer.default_payment_method_id:
        return Outcome(False, "no default payment method in Stripe")
    changed = customer_default_payment_method_set(
        customer=customer, payment_method_id=stripe_customer.default_payment_method_id,
        observed_at=_observed_at(event), actor=actor)
    return Outcome(changed, "" if changed else f"default card of customer #{customer.pk} unchanged")


# Provider look-ups a handler needs, run before the event's transaction opens; their result is passed to
# the handler as `prepared`, so no Stripe call is made while the event row or any other row is locked.
PREPARERS: dict[str, Callable[..., object]] = {
    "checkout.session.completed": checkout_completed_card_lookup,
}

HANDLERS: dict[str, Callable[..., Outcome]] = {
    "payment_intent.succeeded": handle_payment_intent,
    "payment_intent.processing": handle_payment_intent,
    "payment_intent.payment_failed": handle_payment_intent,
    "payment_intent.canceled": handle_payment_intent,
    "charge.refunded": handle_charge_refunded,
    "refund.created": handle_refund,
    "refund.updated": handle_refund,
    "refund.failed": handle_refund,
    "charge.refund.updated": handle_refund,
    "charge.dispute.created": handle_dispute_created,
    "checkout.session.completed": handle_checkout_completed,
    "checkout.session.expired": handle_checkout_expired,
    "setup_intent.succeeded": handle_setup_intent_succeeded,
    "customer.updated": handle_customer_updated,
}
