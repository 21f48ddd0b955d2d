"""Helpers shared by the PayPal tests: a saved wallet at the loopback peer, a payment charged to one, and a
one-off invoice to pay."""

from decimal import Decimal

from django.db import transaction

from payments.models import Payment, PaymentMethod
from payments.providers import ChargeRequest, CustomerAccount
from payments.providers.paypal import client
from payments.providers.paypal.provider import PayPalProvider
from payments.services import LineSpec, invoice_create, invoice_finalize
from payments.services.payment_sync import observed_now
from subscriptions.tests.factories import CustomerFactory


def saved_wallet(peer) -> CustomerAccount:
    setup = client.setup_token_create(customer_reference="", return_url="https://shop.test/ok",
                                      cancel_url="https://shop.test/no", request_id=f"setup-{len(peer.setup_tokens)}")
    peer.approve_setup_token(setup.id)
    token = client.payment_token_create(setup_token_id=setup.id, request_id=f"token-{setup.id}")
    return CustomerAccount(provider="paypal", customer_id=0, reference=token.customer_reference,
                           default_payment_method=token.id)


def charged_payment(peer, actor, *, amount=2500) -> Payment:
    customer = CustomerFactory()
    payment = Payment.objects.create(customer=customer, amount=amount, currency="USD", method=PaymentMethod.PAYPAL,
                                     provider="paypal")
    rail = PayPalProvider()
    result = rail.charge_off_session(ChargeRequest(account=saved_wallet(peer), amount=amount, currency="USD",
                                                   idempotency_key=f"charge-{payment.pk}",
                                                   metadata={"payment_id": str(payment.pk)}))
    rail.charge_apply(payment=payment, result=result, observed_at=observed_now(), actor=actor, reason="test")
    return payment


def one_off_invoice(actor, *, amount=12000, customer=None):
    """A one-off invoice (a consulting day), issued and open."""
    with transaction.atomic():
        line = LineSpec(kind="adjustment", description="Consulting day", unit_amount=Decimal(amount))
        invoice = invoice_create(customer=customer or CustomerFactory(), lines=[line])
        return invoice_finalize(invoice=invoice, actor=actor)
