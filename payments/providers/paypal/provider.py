"""`PayPalProvider`: the provider contract over this package's client and sync.

- off-session charges: an order paid with the customer's vaulted wallet (PayPal captures it at once);
- hosted checkout: an order the payer approves on PayPal (its approve link), captured once approved;
- refunds: of the order's capture, full or partial;
- saved payment methods: a vault setup token whose approve link the API hands out, turned into a
  payment token (the wallet renewals are charged to) once the payer approved;
- webhooks: /webhooks/paypal/ (webhooks/).
PayPal's own answer travels in the neutral result's `raw`; only this rail's applies read it. Client
functions are looked up at call time (`client.<name>`), so a test's replacement applies.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import PaymentProviderError
from payments.models import Payment, Refund
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
from payments.providers.paypal import client, services, sync
from payments.providers.paypal.health import paypal_health
from payments.providers.paypal.models import PAYPAL
from payments.providers.paypal.payloads import (
    TRANSACTION_PAYMENT_STATUS,
    TRANSACTION_REFUND_STATUS,
    PayPalOrder,
    PayPalRefund,
    PayPalTransaction,
)
from subscriptions.models import Customer


def _charge_result(order: PayPalOrder, *, code: str) -> ChargeResult:
    capture = order.capture
    status = order.payment_status
    failure = (capture.status_reason or capture.status).lower() if capture and status == "failed" else ""
    return ChargeResult(provider=code, reference=order.id, status=status,
                        provider_status=capture.status if capture else order.status,
                        amount=capture.amount if capture else order.amount,
                        currency=(capture.currency if capture else order.currency).lower(),
                        failure_code=failure, failure_message=f"PayPal capture {capture.status}" if failure else "",
                        charge_reference=capture.id if capture else "", raw=order)


class PayPalProvider(ProviderBase):
    code = PAYPAL
    codes = frozenset({PAYPAL})
    capabilities = frozenset({Capability.OFF_SESSION_CHARGE, Capability.HOSTED_CHECKOUT, Capability.REFUNDS,
                              Capability.SAVED_PAYMENT_METHODS, Capability.WEBHOOKS, Capability.RECONCILIATION})
    unavailable_message = client.NOT_CONFIGURED
    webhook_view = "payments.providers.paypal.webhooks.views.paypal_webhook"
    webhook_event_apply = "payments.providers.paypal.webhooks.services.paypal_event_apply"

    def is_configured(self) -> bool:
        return client.is_configured()

    def health(self, *, deep: bool = False) -> ProviderHealth:
        return paypal_health(deep=deep)

    def customer_account_ensure(self, *, customer: Customer) -> CustomerAccount:
        # Our own id for the customer at PayPal, stored before PayPal is asked (no call needed).
        return CustomerAccount.of(services.customer_paypal_ensure(customer=customer))

    def charge_off_session(self, request: ChargeRequest) -> ChargeResult:
        payment_id = str(request.metadata.get("payment_id") or "")
        order = client.order_create_vaulted(
            vault_id=request.account.default_payment_method, amount=request.amount, currency=request.currency,
            custom_id=sync.custom_id_for_payment(int(payment_id)) if payment_id.isdigit() else "",
            request_id=request.idempotency_key,
            description=f"Invoice {request.metadata.get('invoice_number') or request.metadata.get('invoice_id', '')}")
        return _charge_result(order, code=self.code)

    def charge_apply(self, *, payment: Payment, result: ChargeResult, observed_at: datetime, actor: Actor,
                     reason: str, now: datetime | None = None) -> None:
        # From the neutral fields: any caller (collection, the demo seed) can record a charge. PayPal's own
        # capture time, when the answer carries it, orders it against the capture's webhooks (same clock).
        captured = result.raw.capture if isinstance(result.raw, PayPalOrder) and result.raw.capture else None
        sync.payment_sync_charge(payment=payment, order_id=result.reference, capture_id=result.charge_reference,
                                 to_status=result.status, provider_status=result.provider_status,
                                 observed_at=(captured.updated_at if captured else None) or observed_at,
                                 actor=actor, reason=reason,
                                 failure_code=result.failure_code, failure_message=result.failure_message, now=now)

    def payment_reference(self, *, payment: Payment) -> str:
        return sync.payment_order_id(payment)

    def payment_reference_set(self, *, payment: Payment, reference: str) -> None:
        sync.payment_ids_remember(payment=payment, order_id=reference)

    def refund_create(self, request: RefundRequest) -> RefundResult:
        # Refunds go against the order's capture; the order answers which one it is.
        capture = client.order_get(order_id=request.payment_reference).capture
        if capture is None:
            raise PaymentProviderError(_("PayPal order %(order)s has no capture to refund.")
                                       % {"order": request.payment_reference},
                                       code="payment_provider_error", extra={"provider": self.code})
        refund_id = str(request.metadata.get("refund_id") or "")
        refund = client.capture_refund(
            capture_id=capture.id, amount=request.amount, currency=request.currency,
            custom_id=sync.custom_id_for_refund(int(refund_id)) if refund_id.isdigit() else "",
            request_id=request.idempotency_key)
        return RefundResult(provider=self.code, reference=refund.id, status=refund.refund_status,
                            provider_status=refund.status, amount=refund.amount, currency=refund.currency.lower(),
                            raw=refund)

    def refund_apply(self, *, payment: Payment, refund: Refund, result: RefundResult, actor: Actor, reason: str,
                     now: datetime | None = None) -> bool:
        # From the neutral fields: `status` is ours already (RefundStatus), PayPal's word is only recorded.
        word = {"succeeded": "COMPLETED", "pending": "PENDING", "failed": "FAILED", "canceled": "CANCELLED"}
        paypal_refund = PayPalRefund(id=result.reference, status=word.get(result.status, result.provider_status),
                                     amount=result.amount, currency=result.currency.upper(), capture_id="",
                                     custom_id="", updated_at=None)
        return sync.refund_apply_paypal(payment=payment, refund=refund, result=paypal_refund, actor=actor,
                                        reason=reason, now=now)

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession:
        invoice_id = str(request.metadata.get("invoice_id") or "")
        order = client.order_create_for_approval(
            amount=sum(line.unit_amount * line.quantity for line in request.lines), currency=request.currency,
            custom_id=f"invoice-{invoice_id}" if invoice_id else "", request_id=request.idempotency_key,
            return_url=request.success_url, cancel_url=request.cancel_url,
            description="; ".join(line.name for line in request.lines),
            store_in_vault=request.save_payment_method, customer_reference=request.account.reference)
        return CheckoutSession(provider=self.code, reference=order.id, url=order.approve_url, status=order.status,
                               raw=order)

    def setup_session_create(self, request: SetupRequest) -> SetupSession:
        token = client.setup_token_create(
            customer_reference=request.account.reference, request_id=request.idempotency_key,
            return_url=request.return_url or settings.CHECKOUT_SUCCESS_URL,
            cancel_url=request.cancel_url or settings.CHECKOUT_CANCEL_URL)
        return SetupSession(provider=self.code, reference=token.id, client_secret="", status=token.status,
                            raw=token, url=token.approve_url)

    def setup_session_complete(self, *, customer: Customer, reference: str, actor: Actor) -> CustomerAccount:
        return CustomerAccount.of(services.wallet_confirm(customer=customer, setup_token_id=reference, actor=actor))

    def transactions_list(self, *, since: datetime, until: datetime) -> list[ProviderTransaction]:
        listed = client.transactions_list(start=since, end=until)
        return [_transaction(found, code=self.code) for found in listed if found.kind in ("capture", "refund")]


def _transaction(found: PayPalTransaction, *, code: str) -> ProviderTransaction:
    """A Transaction Search line in the contract's words; our ids come back in the custom_id we sent."""
    invoice_id = found.custom_id.removeprefix("invoice-") if found.custom_id.startswith("invoice-") else ""
    if found.kind == "refund":
        status = TRANSACTION_REFUND_STATUS.get(found.status, "")
        raw = PayPalRefund(id=found.id, status={"succeeded": "COMPLETED", "pending": "PENDING",
                                                "failed": "FAILED"}.get(status, ""),
                           amount=found.amount, currency=found.currency, capture_id=found.reference_id,
                           custom_id=found.custom_id, updated_at=found.at)
        return ProviderTransaction(provider=code, kind=TRANSACTION_REFUND, reference=found.id, status=status,
                                   amount=found.amount, currency=found.currency.lower(), at=found.at,
                                   refund_id=sync.refund_id_from_custom_id(found.custom_id),
                                   refunded_reference=found.reference_id, raw=raw)
    return ProviderTransaction(provider=code, kind=TRANSACTION_PAYMENT, reference=found.id,
                               status=TRANSACTION_PAYMENT_STATUS.get(found.status, ""), amount=found.amount,
                               currency=found.currency.lower(), at=found.at,
                               payment_id=sync.payment_id_from_custom_id(found.custom_id),
                               invoice_id=int(invoice_id) if invoice_id.isdigit() and len(invoice_id) < 19 else None,
                               raw=found)
