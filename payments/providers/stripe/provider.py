"""`StripeProvider`: the provider contract over the gateway, sync and services of this package.

Each method looks the gateway function up when it is called (`gateway.<name>`), so a test that replaces a
gateway function replaces it for the contract too. Stripe's own answer travels in the neutral result's
`raw`, and only this rail's applies read it.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from core.audit import Actor
from core.exceptions import BillingError
from payments.models import Payment, ProviderAccount, Refund
from payments.providers.base import (
    TRANSACTION_PAYMENT,
    TRANSACTION_REFUND,
    Capability,
    ChargeRequest,
    ChargeResult,
    CheckoutRequest,
    CheckoutSession,
    CustomerAccount,
    ProviderBase,
    ProviderHealth,
    ProviderTransaction,
    RefundRequest,
    RefundResult,
    SetupRequest,
    SetupSession,
)
from payments.providers.stripe import gateway, services, sync
from payments.providers.stripe.health import stripe_health
from payments.providers.stripe.models import STRIPE
from subscriptions.models import Customer


class StripeProvider(ProviderBase):
    code = STRIPE
    codes = frozenset({STRIPE})
    capabilities = frozenset({Capability.OFF_SESSION_CHARGE, Capability.HOSTED_CHECKOUT, Capability.REFUNDS,
                              Capability.SAVED_PAYMENT_METHODS, Capability.WEBHOOKS, Capability.RECONCILIATION})
    unavailable_message = gateway.NOT_CONFIGURED
    webhook_view = "payments.providers.stripe.webhooks.views.stripe_webhook"
    webhook_event_apply = "payments.providers.stripe.webhooks.services.stripe_event_apply"

    def is_configured(self) -> bool:
        return gateway.is_configured()

    def health(self, *, deep: bool = False) -> ProviderHealth:
        return stripe_health(deep=deep)

    def customer_account(self, *, customer: Customer) -> CustomerAccount | None:
        account = super().customer_account(customer=customer)
        # An account without a Stripe customer (none created yet) cannot be charged or checked out.
        return account if account is not None and account.reference else None

    def customer_account_ensure(self, *, customer: Customer) -> CustomerAccount:
        services.customer_stripe_ensure(customer=customer)
        return CustomerAccount.of(ProviderAccount.objects.get(customer_id=customer.pk, provider=STRIPE))

    def charge_off_session(self, request: ChargeRequest) -> ChargeResult:
        try:
            intent = gateway.payment_intent_charge_off_session(
                customer_id=request.account.reference, payment_method_id=request.account.default_payment_method,
                amount=request.amount, currency=request.currency, metadata=dict(request.metadata),
                idempotency_key=request.idempotency_key)
        except BillingError as exc:
            # A declined card may still have created a PaymentIntent: its id is the payment's reference.
            if exc.extra.get("payment_intent_id"):
                exc.extra.setdefault("reference", exc.extra["payment_intent_id"])
            raise
        return ChargeResult(provider=self.code, reference=intent.id, status=sync.INTENT_STATUS.get(intent.status, ""),
                            provider_status=intent.status, amount=intent.amount, currency=intent.currency,
                            failure_code=intent.failure_code, failure_message=intent.failure_message,
                            charge_reference=intent.latest_charge_id, raw=intent)

    def charge_apply(self, *, payment: Payment, result: ChargeResult, observed_at: datetime, actor: Actor,
                     reason: str, now: datetime | None = None) -> None:
        # The PaymentIntent as far as sync reads it, from the neutral fields: any caller of the contract
        # (collection, the demo seed) can record a charge without holding Stripe's own object.
        intent = gateway.PaymentIntentResult(
            id=result.reference, status=result.provider_status, amount=result.amount, currency=result.currency,
            customer_id="", payment_method_id="", latest_charge_id=result.charge_reference, created=None,
            failure_code=result.failure_code, failure_message=result.failure_message)
        sync.payment_sync_intent(payment=payment, intent=intent, observed_at=observed_at, actor=actor,
                                 reason=reason, now=now, to_status=result.status)

    def payment_reference(self, *, payment: Payment) -> str:
        return (payment.provider_payment_id or "") if payment.provider == STRIPE else ""

    def payment_reference_set(self, *, payment: Payment, reference: str) -> None:
        if reference and not payment.provider_payment_id:
            payment.provider, payment.provider_payment_id = STRIPE, reference
            payment.save(update_fields=["provider", "provider_payment_id", "updated_at"])

    def refund_create(self, request: RefundRequest) -> RefundResult:
        refund = gateway.refund_create(payment_intent_id=request.payment_reference, amount=request.amount,
                                       metadata=dict(request.metadata), idempotency_key=request.idempotency_key)
        return RefundResult(provider=self.code, reference=refund.id,
                            status=sync.STRIPE_REFUND_STATUS.get(refund.status, ""), provider_status=refund.status,
                            amount=refund.amount, currency=refund.currency, raw=refund)

    def refund_apply(self, *, payment: Payment, refund: Refund, result: RefundResult, actor: Actor, reason: str,
                     now: datetime | None = None) -> bool:
        # Stripe's refund as far as sync reads it (its id and status), from the neutral fields.
        stripe_refund = gateway.RefundResult(id=result.reference, status=result.provider_status, amount=result.amount,
                                             currency=result.currency, payment_intent_id="", charge_id="")
        return sync.refund_apply_stripe(payment=payment, refund=refund, result=stripe_refund, actor=actor,
                                        reason=reason, now=now, to_status=result.status)

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession:
        session = gateway.checkout_session_create(
            customer_id=request.account.reference, lines=list(request.lines), currency=request.currency,
            success_url=request.success_url, cancel_url=request.cancel_url,
            save_payment_method=request.save_payment_method, metadata=dict(request.metadata),
            idempotency_key=request.idempotency_key)
        return CheckoutSession(provider=self.code, reference=session.id, url=session.url, status=session.status,
                               raw=session)

    def setup_session_create(self, request: SetupRequest) -> SetupSession:
        setup = gateway.setup_intent_create(customer_id=request.account.reference, metadata=dict(request.metadata),
                                            idempotency_key=request.idempotency_key)
        return SetupSession(provider=self.code, reference=setup.id, client_secret=setup.client_secret,
                            status=setup.status, publishable_key=settings.STRIPE_PUBLISHABLE_KEY, raw=setup)

    def transactions_list(self, *, since: datetime, until: datetime) -> list[ProviderTransaction]:
        intents = gateway.payment_intents_list(since=since, until=until)
        refunds = gateway.refunds_list(since=since, until=until)
        # A refund made on a charge names the charge only: its PaymentIntent is the payment's reference.
        intent_of_charge = {i.latest_charge_id: i.id for i in intents if i.latest_charge_id}
        payments = [_payment_transaction(intent, code=self.code) for intent in intents if _is_money(intent)]
        return payments + [_refund_transaction(refund, code=self.code, intent_of_charge=intent_of_charge)
                           for refund in refunds]


def _our_id(metadata: dict, key: str) -> int | None:
    value = str(metadata.get(key) or "")
    return int(value) if value.isdigit() and len(value) < 19 else None


def _is_money(intent: gateway.PaymentIntentResult) -> bool:
    """An intent that moved (or is moving) money, or one we started (our ids in its metadata); an intent
    abandoned before any payment method (a checkout page left open) is neither."""
    return (intent.status in ("succeeded", "processing", "requires_capture")
            or _our_id(intent.metadata, "payment_id") is not None or _our_id(intent.metadata, "invoice_id") is not None)


def _payment_transaction(intent: gateway.PaymentIntentResult, *, code: str) -> ProviderTransaction:
    return ProviderTransaction(provider=code, kind=TRANSACTION_PAYMENT, reference=intent.id,
                               status=sync.INTENT_STATUS.get(intent.status, ""), amount=intent.amount,
                               currency=intent.currency.lower(), at=intent.created,
                               payment_id=_our_id(intent.metadata, "payment_id"),
                               invoice_id=_our_id(intent.metadata, "invoice_id"), raw=intent)


def _refund_transaction(refund: gateway.RefundResult, *, code: str,
                        intent_of_charge: dict[str, str]) -> ProviderTransaction:
    return ProviderTransaction(provider=code, kind=TRANSACTION_REFUND, reference=refund.id,
                               status=sync.STRIPE_REFUND_STATUS.get(refund.status, ""), amount=refund.amount,
                               currency=refund.currency.lower(), at=refund.created,
                               payment_id=_our_id(refund.metadata, "payment_id"),
                               refund_id=_our_id(refund.metadata, "refund_id"),
                               raw=refund, refunded_reference=(refund.payment_intent_id
                                                               or intent_of_charge.get(refund.charge_id, "")))
