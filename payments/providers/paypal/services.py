"""Writes that involve PayPal customers and saved wallets, and recording a checkout order's capture.

- The customer's id at PayPal is ours to choose (PayPal's vault takes a merchant customer id): it is
  stored in the customer's ProviderAccount before PayPal is first asked, so every later message about the
  customer's wallets (VAULT.PAYMENT-TOKEN.*) finds the customer, whichever comes first.
- A wallet is saved in two steps: the payer approves a setup token on PayPal (the approve link the API
  hands out), then `wallet_confirm` turns it into a payment token (PayPal called with no transaction
  open) and makes it the customer's default for renewals in a short transaction.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext

from core.audit import Actor
from core.exceptions import InvalidOperation, PaymentProviderUnavailable
from payments.models import Invoice, Payment, PaymentMethod, ProviderAccount
from payments.providers.paypal import client, sync
from payments.providers.paypal.models import PAYPAL
from payments.providers.paypal.payloads import PayPalOrder
from payments.selectors.provider_accounts import provider_account_by_reference
from payments.services import (
    payment_counted,
    payment_lock,
    provider_account_default_payment_method_set,
    provider_account_reference_set,
)
from payments.services.payment_sync import SyncResult, observed_now
from subscriptions.models import Customer


def paypal_customer_reference(customer_id: int) -> str:
    """Our id for the customer at PayPal (at most 22 characters of [A-Za-z0-9_-], as PayPal requires)."""
    return f"billing-{customer_id}"


def customer_paypal_ensure(*, customer: Customer) -> ProviderAccount:
    """The customer's PayPal account row, with our id for them at PayPal (a local write: no call)."""
    return provider_account_reference_set(customer=customer, provider=PAYPAL,
                                          provider_customer_id=paypal_customer_reference(customer.pk))


def wallet_default_set(*, customer_reference: str, vault_id: str, deleted: bool, observed_at: datetime,
                       actor: Actor) -> bool | None:
    """Make `vault_id` the default wallet of the customer PayPal knows as `customer_reference` (or forget
    it when deleted). None when no customer of ours is that reference; else whether anything changed."""
    account = provider_account_by_reference(provider=PAYPAL, provider_customer_id=customer_reference)
    if account is None:
        return None
    if deleted and account.default_payment_method_id != vault_id:
        return False
    return provider_account_default_payment_method_set(customer=account.customer, provider=PAYPAL,
                                                       payment_method_id="" if deleted else vault_id,
                                                       observed_at=observed_at, actor=actor)


def wallet_confirm(*, customer: Customer, setup_token_id: str, actor: Actor) -> ProviderAccount:
    """After the payer approved a setup token: the wallet it saved becomes the customer's default for
    renewals. Refused (400) when the token was made for another customer."""
    if not client.is_configured():
        raise PaymentProviderUnavailable(client.NOT_CONFIGURED, extra={"provider": PAYPAL})
    account = customer_paypal_ensure(customer=customer)
    token = client.payment_token_create(setup_token_id=setup_token_id, request_id=f"wallet-{setup_token_id}")
    if token.customer_reference != account.provider_customer_id:
        raise InvalidOperation(gettext("This PayPal approval belongs to another customer."),
                               code="setup_token_mismatch",
                               extra={"fields": {"setup_token": ["Not an approval of this customer."]}})
    provider_account_default_payment_method_set(customer=customer, provider=PAYPAL, payment_method_id=token.id,
                                                observed_at=observed_now(), actor=actor)
    return ProviderAccount.objects.get(pk=account.pk)


def checkout_payment_get_or_create(*, invoice_id: int, order_id: str, amount: int, currency: str) -> int:
    """The payment of a checkout order of ours, created the first time its capture is reported (by the
    capture answer or a webhook, whichever comes first: the unique order id makes them one row)."""
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise LookupError(gettext("invoice #%(invoice)s named by PayPal order %(order)s does not exist")
                          % {"invoice": invoice_id, "order": order_id})
    with transaction.atomic():
        payment, created = Payment.objects.get_or_create(
            provider=PAYPAL, provider_payment_id=order_id,
            defaults={"customer_id": invoice.customer_id, "invoice": invoice, "amount": amount,
                      "currency": currency.lower() if currency else invoice.currency, "method": PaymentMethod.PAYPAL})
        if created:
            payment_counted(payment_id=payment.pk)
    return payment.pk


def checkout_order_record(*, order: PayPalOrder, observed_at: datetime, actor: Actor, reason: str) -> SyncResult | None:
    """Record a captured checkout order: its payment (created once per order) moves through the state
    machine, paying the invoice; a wallet PayPal vaulted with it becomes the customer's default. None when
    the order is not a captured checkout order of ours."""
    capture = order.capture
    invoice_id = sync.invoice_id_from_custom_id(order.custom_id)
    if capture is None or invoice_id is None:
        return None
    payment_id = checkout_payment_get_or_create(invoice_id=invoice_id, order_id=order.id, amount=capture.amount,
                                                currency=capture.currency)
    with transaction.atomic():
        payment = payment_lock(payment_id=payment_id)
        result = sync.payment_sync_order(payment=payment, order=order, observed_at=capture.updated_at or observed_at,
                                         actor=actor, reason=reason)
    if order.vault_id and order.customer_reference:
        wallet_default_set(customer_reference=order.customer_reference, vault_id=order.vault_id, deleted=False,
                           observed_at=observed_at, actor=actor)
    return result
