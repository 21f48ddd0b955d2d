"""Hosted checkout and saving a payment method, through the provider contract (the preferred configured
rail offering the capability; Stripe Checkout and SetupIntents today), and what a customer may buy by
itself and where the checkout may send its browser back.

`checkout_subscription_start` and `checkout_credit_pack_start` take any price and any redirect URL,
because staff and the back office call them. A customer's program must not choose either: it names a
credit pack from the `CREDIT_PACKS` catalog (priced in the customer's currency) and redirect URLs on the
hosts of `CHECKOUT_REDIRECT_HOSTS` (anything else would make us an open redirect).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import IllegalTransition, InvalidOperation
from payments.models import BillingReason, Invoice, InvoiceLineKind, InvoiceStatus
from payments.providers import (
    Capability,
    CheckoutLine,
    CheckoutRequest,
    CheckoutSession,
    CustomerAccount,
    PaymentProvider,
    SetupRequest,
    SetupSession,
    provider_for,
    provider_installed_for,
    provider_with,
    providers_installed,
)
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

# How long an invoice being paid on a checkout page is kept from off-session collection: a Stripe Checkout
# Session lives 24 hours, a PayPal order waits at most that long for approval in practice. After it, an
# abandoned page no longer blocks collection.
INVOICE_CHECKOUT_HOLD = timedelta(hours=24)


def checkout_rail(*, provider: str, capability: Capability) -> PaymentProvider:
    """The rail a request names (`provider`, a PAYMENT_PROVIDERS code) or, when it names none, the preferred
    configured rail offering `capability`. A rail that is not installed or lacks the capability is the
    caller's mistake (400 naming the field); an installed rail without its keys answers 503."""
    if not provider:
        return provider_with(capability)
    rail = provider_installed_for(provider)
    if rail is None or rail.code != provider or capability not in rail.capabilities:
        offering = sorted(r.code for r in providers_installed() if capability in r.capabilities)
        raise InvalidOperation(_("No installed payment provider %(provider)r offers %(capability)s.")
                               % {"provider": provider, "capability": capability.value},
                               code="invalid", extra={"fields": {"provider": [
                                   _("Choose one of: %(choices)s.") % {"choices": ", ".join(offering) or _("none")}]}})
    return provider_for(provider)


def payment_method_setup_start(*, customer: Customer, provider: str = "", return_url: str = "",
                               cancel_url: str = "") -> tuple[CustomerAccount, SetupSession]:
    """Start saving a payment method with the rail named (or the preferred rail that keeps them): the
    front end completes the returned session (Stripe: confirms the SetupIntent's client secret with
    Stripe.js; PayPal: sends the payer to its approve `url`, which returns to `return_url`), and the rail
    makes it the customer's default for renewals."""
    rail = checkout_rail(provider=provider, capability=Capability.SAVED_PAYMENT_METHODS)
    account = rail.customer_account_ensure(customer=customer)
    # Each call is a new session; the random key still lets the provider's client retry this one call.
    session = rail.setup_session_create(SetupRequest(
        account=account, metadata={"customer_id": str(customer.pk)},
        idempotency_key=f"setup-intent-{customer.pk}-{uuid.uuid4().hex}", return_url=return_url,
        cancel_url=cancel_url))
    return account, session


def payment_method_setup_complete(*, customer: Customer, provider: str, reference: str,
                                  actor: Actor) -> CustomerAccount:
    """The customer approved a setup session on the rail's own page (PayPal's approve link): the payment
    method it saved becomes the default for renewals. The rail is called with no transaction open."""
    rail = checkout_rail(provider=provider, capability=Capability.SAVED_PAYMENT_METHODS)
    return rail.setup_session_complete(customer=customer, reference=reference, actor=actor)


@dataclass(frozen=True)
class CheckoutStart:
    # None for a merchant of record's checkout: it bills the customer itself, we issue nothing.
    invoice: Invoice | None
    session: CheckoutSession
    subscription: Subscription | None = None


def _checkout_intent_record(*, invoice: Invoice) -> Invoice:
    """In the transaction that issues the invoice: take it out of the billing run's off-session
    collection, because the customer is paying it on a hosted checkout page."""
    invoice = invoice_lock(invoice_id=invoice.pk)
    invoice.next_attempt_at = None
    invoice.metadata = {**invoice.metadata, "collection": "checkout"}
    invoice.save(update_fields=["next_attempt_at", "metadata", "updated_at"])
    return invoice


def _checkout_session_open(*, rail: PaymentProvider, account: CustomerAccount, invoice: Invoice, kind: str,
                           actor: Actor, success_url: str, cancel_url: str,
                           save_payment_method: bool) -> CheckoutSession:
    """Open the hosted checkout page for a committed, numbered invoice: the rail is called with no
    transaction open (no invoice-number or row lock held while it answers), the session is recorded in a
    short transaction, and when the rail fails the invoice (and a subscription waiting for it) is
    withdrawn."""
    lines = (CheckoutLine(name=f"Invoice {invoice.number}", unit_amount=invoice.amount_due),)
    try:
        session = rail.checkout_session_create(CheckoutRequest(
            account=account, lines=lines, currency=invoice.currency,
            success_url=success_url, cancel_url=cancel_url, save_payment_method=save_payment_method,
            metadata={"kind": kind, "invoice_id": str(invoice.pk), "customer_id": str(invoice.customer_id)},
            # One session per invoice, whoever asks again for it.
            idempotency_key=f"checkout-invoice-{invoice.pk}",
        ))
    except Exception:
        _checkout_withdraw(invoice=invoice, actor=actor)
        raise
    with transaction.atomic():
        locked = invoice_lock(invoice_id=invoice.pk)
        locked.metadata = {**locked.metadata, "checkout_session_id": session.reference}
        locked.save(update_fields=["metadata", "updated_at"])
    return session


def _checkout_withdraw(*, invoice: Invoice, actor: Actor) -> None:
    """No checkout page could be opened: void the invoice nobody can pay and cancel the subscription
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
                                cancel_url: str, now: datetime | None = None, provider: str = "") -> CheckoutStart:
    """Subscribe through the preferred rail's hosted checkout (Stripe Checkout): the subscription starts
    incomplete with its first invoice, the checkout collects that invoice and saves the payment method for
    renewals, and the rail's completion webhook pays the invoice, which activates the subscription.

    The subscription and its numbered invoice commit first (the intent), then the rail is called outside
    any transaction, then the session is recorded (or, when the rail fails, both are withdrawn)."""
    if plan.is_free:
        raise InvalidOperation(_("A free plan needs no checkout; subscribe directly."), code="nothing_to_pay")
    if _merchant_of_record(provider):
        return _checkout_merchant_of_record(customer=customer, plan=plan, provider=provider, success_url=success_url,
                                            cancel_url=cancel_url)
    rail = checkout_rail(provider=provider, capability=Capability.HOSTED_CHECKOUT)
    account = rail.customer_account_ensure(customer=customer)
    with transaction.atomic():
        subscription, invoice = subscription_start(customer=customer, plan=plan, actor=actor, now=now,
                                                   with_trial=False)
        _checkout_intent_record(invoice=invoice)
    session = _checkout_session_open(rail=rail, account=account, invoice=invoice, kind="subscription", actor=actor,
                                     success_url=success_url, cancel_url=cancel_url, save_payment_method=True)
    invoice.refresh_from_db()
    return CheckoutStart(invoice=invoice, session=session, subscription=subscription)


def _merchant_of_record(provider: str) -> bool:
    rail = provider_installed_for(provider) if provider else None
    return rail is not None and rail.code == provider and Capability.MERCHANT_OF_RECORD in rail.capabilities


def _checkout_merchant_of_record(*, customer: Customer, plan: Plan, provider: str, success_url: str,
                                 cancel_url: str) -> CheckoutStart:
    """Subscribe through a merchant of record (Lemon Squeezy): it sells the plan and bills the customer
    itself, so nothing of ours is created here; its checkout carries our customer and plan, and its
    webhooks create and move the mirrored subscription once the customer paid."""
    if not plan.is_active:
        raise InvalidOperation(_("Plan %(plan)s takes no new subscriptions.") % {"plan": plan.code},
                               code="plan_inactive")
    if customer.subscriptions.filter(status__in=[s for s in SubscriptionStatus.values
                                                 if s != SubscriptionStatus.CANCELED]).exists():
        raise IllegalTransition(_("The customer already has a live subscription; change its plan instead."),
                                code="subscription_exists")
    rail = provider_for(provider)
    session = rail.checkout_session_create(CheckoutRequest(
        account=CustomerAccount(provider=rail.code, customer_id=customer.pk, reference=""),
        lines=(CheckoutLine(name=plan.name, unit_amount=plan.amount),), currency=plan.currency,
        success_url=success_url, cancel_url=cancel_url, save_payment_method=False,
        metadata={"kind": "subscription", "plan_id": str(plan.pk), "customer_id": str(customer.pk)},
        idempotency_key=f"checkout-plan-{customer.pk}-{plan.pk}-{uuid.uuid4().hex}"))
    return CheckoutStart(invoice=None, session=session, subscription=None)


def checkout_credit_pack_start(*, customer: Customer, credits: int, amount: int, actor: Actor, success_url: str,
                               cancel_url: str, now: datetime | None = None, provider: str = "") -> CheckoutStart:
    """Sell `credits` prepaid credits for `amount` minor units through Checkout; the credits are
    granted when the invoice is paid (payments.services.credit_pack_fulfill). The numbered invoice
    commits before the rail is called, as for a subscription."""
    if credits <= 0 or amount <= 0:
        raise InvalidOperation(_("A credit pack has a positive number of credits and a positive price."),
                               code="invalid_amount")
    rail = checkout_rail(provider=provider, capability=Capability.HOSTED_CHECKOUT)
    account = rail.customer_account_ensure(customer=customer)
    now = now or timezone.now()
    with transaction.atomic():
        invoice = invoice_create(
            customer=customer, billing_reason=BillingReason.CREDIT_PACK,
            lines=[LineSpec(kind=InvoiceLineKind.CREDIT_PACK, description=f"{credits} credits",
                            unit_amount=Decimal(amount), credits=credits)],
        )
        invoice = invoice_finalize(invoice=invoice, actor=actor, now=now)
        _checkout_intent_record(invoice=invoice)
    session = _checkout_session_open(rail=rail, account=account, invoice=invoice, kind="credit_pack", actor=actor,
                                     success_url=success_url, cancel_url=cancel_url, save_payment_method=False)
    invoice.refresh_from_db()
    return CheckoutStart(invoice=invoice, session=session)


def _invoice_checkout_hold(*, invoice_id: int, now: datetime) -> datetime | None:
    """In the transaction before the rail is called: keep the billing run from charging an invoice the
    customer is paying on a checkout page, for as long as the page may take (INVOICE_CHECKOUT_HOLD); an
    abandoned page thus hands the invoice back to collection by itself. Returns the schedule it replaced."""
    invoice = invoice_lock(invoice_id=invoice_id)
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_due <= 0:
        raise InvalidOperation(_("Invoice %(invoice)s is %(status)s with %(due)s due: there is nothing to pay.")
                               % {"invoice": invoice.number or invoice.pk, "status": invoice.status,
                                  "due": invoice.amount_due}, code="nothing_to_pay")
    scheduled = invoice.next_attempt_at
    if scheduled is not None and scheduled < now + INVOICE_CHECKOUT_HOLD:
        invoice.next_attempt_at = now + INVOICE_CHECKOUT_HOLD
        invoice.save(update_fields=["next_attempt_at", "updated_at"])
    return scheduled


def checkout_invoice_start(*, invoice: Invoice, actor: Actor, success_url: str, cancel_url: str,
                           provider: str = "", now: datetime | None = None) -> CheckoutStart:
    """Pay an open invoice of ours (a one-off invoice, a renewal in dunning) on the rail's hosted checkout
    page: collection is held off first (committed), the rail is called with nothing locked, and the session
    is recorded; paying settles the invoice through the rail's webhook. If the rail fails, the invoice's
    collection schedule is put back (it was issued before and stays valid)."""
    rail = checkout_rail(provider=provider, capability=Capability.HOSTED_CHECKOUT)
    account = rail.customer_account_ensure(customer=invoice.customer)
    with transaction.atomic():
        scheduled = _invoice_checkout_hold(invoice_id=invoice.pk, now=now or timezone.now())
    invoice.refresh_from_db()
    lines = (CheckoutLine(name=f"Invoice {invoice.number}", unit_amount=invoice.amount_due),)
    try:
        session = rail.checkout_session_create(CheckoutRequest(
            account=account, lines=lines, currency=invoice.currency, success_url=success_url, cancel_url=cancel_url,
            save_payment_method=False, idempotency_key=f"checkout-invoice-{invoice.pk}-{uuid.uuid4().hex}",
            metadata={"kind": "invoice", "invoice_id": str(invoice.pk), "customer_id": str(invoice.customer_id)}))
    except Exception:
        with transaction.atomic():
            back = invoice_lock(invoice_id=invoice.pk)
            back.next_attempt_at = scheduled
            back.save(update_fields=["next_attempt_at", "updated_at"])
        raise
    with transaction.atomic():
        recorded = invoice_lock(invoice_id=invoice.pk)
        recorded.metadata = {**recorded.metadata, "checkout_session_id": session.reference}
        recorded.save(update_fields=["metadata", "updated_at"])
    return CheckoutStart(invoice=recorded, session=session)


@dataclass(frozen=True)
class CreditPack:
    code: str
    credits: int
    # Minor units of `currency`.
    amount: int
    currency: str


def credit_pack_list(*, currency: str) -> list[CreditPack]:
    """The packs sold in `currency`, smallest first."""
    packs = [
        CreditPack(code=code, credits=int(spec["credits"]), amount=int(spec["prices"][currency]), currency=currency)
        for code, spec in settings.CREDIT_PACKS.items()
        if currency in spec.get("prices", {})
    ]
    return sorted(packs, key=lambda pack: (pack.credits, pack.code))


def credit_pack_get(*, code: str, currency: str) -> CreditPack:
    for pack in credit_pack_list(currency=currency):
        if pack.code == code:
            return pack
    choices = ", ".join(pack.code for pack in credit_pack_list(currency=currency)) or _("none")
    raise InvalidOperation(_("No credit pack %(code)r is sold in %(currency)s.") % {"code": code, "currency": currency},
                           code="unknown_credit_pack",
                           extra={"fields": {"pack": [_("Choose one of: %(choices)s.") % {"choices": choices}]}})


def _redirect_url(*, field: str, given: str | None, default: str) -> str:
    if not given:
        if not default:
            raise InvalidOperation(_("Give %(field)s: no default is configured.") % {"field": field}, code="invalid",
                                   extra={"fields": {field: [_("This field is required.")]}})
        return default
    parts = urlsplit(given)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or host not in settings.CHECKOUT_REDIRECT_HOSTS:
        raise InvalidOperation(_("%(field)s must be an http(s) URL on an allowed host.") % {"field": field},
                               code="redirect_not_allowed",
                               extra={"fields": {field: [
                                   _("Host %(host)s is not allowed; ask for it to be added to CHECKOUT_REDIRECT_HOSTS.")
                                   % {"host": host or _("(none)")}]}})
    return given


def checkout_redirect_urls(*, success_url: str | None, cancel_url: str | None) -> tuple[str, str]:
    """The (success, cancel) URLs of a customer's Checkout: its own on allowed hosts, else the defaults."""
    return (_redirect_url(field="success_url", given=success_url, default=settings.CHECKOUT_SUCCESS_URL),
            _redirect_url(field="cancel_url", given=cancel_url, default=settings.CHECKOUT_CANCEL_URL))


def checkout_credit_pack_buy(*, customer: Customer, pack_code: str, actor: Actor, success_url: str,
                             cancel_url: str, provider: str = "") -> tuple[CreditPack, CheckoutStart]:
    """Checkout for a catalog pack at its price in the customer's currency."""
    pack = credit_pack_get(code=pack_code, currency=customer.currency)
    start = checkout_credit_pack_start(customer=customer, credits=pack.credits, amount=pack.amount, actor=actor,
                                       success_url=success_url, cancel_url=cancel_url, provider=provider)
    return pack, start
