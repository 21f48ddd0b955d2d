"""PayPalProvider (payments/providers/paypal/provider.py) against the loopback peer: the contract's calls
and applies, and the neutral flows (refunds) going through it."""

import pytest

from core.exceptions import CardDeclined, PaymentProviderUnavailable
from payments.models import PaymentStatus, RefundStatus
from payments.providers import (
    Capability,
    ChargeRequest,
    CheckoutLine,
    CheckoutRequest,
    CustomerAccount,
    SetupRequest,
    provider_for,
)
from payments.providers.paypal.provider import PayPalProvider
from payments.services import payment_refund
from payments.tests.providers.paypal.support import charged_payment, saved_wallet

pytestmark = pytest.mark.django_db


def test_without_keys_the_rail_answers_503_saying_the_rest_works(settings):
    settings.PAYPAL_CLIENT_ID = ""
    with pytest.raises(PaymentProviderUnavailable) as raised:
        provider_for("paypal")
    assert "PAYPAL_CLIENT_ID" in raised.value.message and "manual payments" in raised.value.message


def test_the_rail_declares_what_it_offers(paypal_api):
    assert provider_for("paypal").capabilities == {Capability.OFF_SESSION_CHARGE, Capability.HOSTED_CHECKOUT,
                                                   Capability.REFUNDS, Capability.SAVED_PAYMENT_METHODS,
                                                   Capability.WEBHOOKS, Capability.RECONCILIATION}


def test_an_off_session_charge_pays_the_payment_and_names_it_on_paypal(paypal_api, actor):
    payment = charged_payment(paypal_api, actor)
    payment.refresh_from_db()
    sent = paypal_api.requests[-1]["body"]["purchase_units"][0]
    assert payment.status == PaymentStatus.SUCCEEDED and payment.provider_payment_id.startswith("ORD")
    assert sent["custom_id"] == f"payment-{payment.pk}" and sent["amount"]["value"] == "25.00"


def test_a_declined_wallet_raises_card_declined(paypal_api):
    paypal_api.fail_next("decline")
    with pytest.raises(CardDeclined):
        PayPalProvider().charge_off_session(ChargeRequest(account=saved_wallet(paypal_api), amount=100,
                                                          currency="USD", idempotency_key="declined"))


def test_checkout_hands_out_the_orders_approve_link(paypal_api):
    session = PayPalProvider().checkout_session_create(CheckoutRequest(
        account=CustomerAccount(provider="paypal", customer_id=1, reference=""),
        lines=(CheckoutLine(name="Invoice INV-1", unit_amount=4500),), currency="EUR",
        success_url="https://shop.test/ok", cancel_url="https://shop.test/no", save_payment_method=True,
        idempotency_key="checkout-invoice-7", metadata={"invoice_id": "7"}))
    body = paypal_api.requests[-1]["body"]
    assert session.url.startswith("https://www.sandbox.paypal.com/checkoutnow?token=")
    assert body["purchase_units"][0]["custom_id"] == "invoice-7"
    assert body["payment_source"]["paypal"]["attributes"]["vault"]["store_in_vault"] == "ON_SUCCESS"


def test_saving_a_wallet_hands_out_the_setup_tokens_approve_link(paypal_api):
    session = PayPalProvider().setup_session_create(SetupRequest(
        account=CustomerAccount(provider="paypal", customer_id=1, reference=""), idempotency_key="setup-x",
        return_url="https://shop.test/saved", cancel_url="https://shop.test/no"))
    sent = paypal_api.requests[-1]["body"]["payment_source"]["paypal"]["experience_context"]
    assert session.url.startswith("https://www.sandbox.paypal.com/agreements/approve")
    assert sent["return_url"] == "https://shop.test/saved"


@pytest.mark.parametrize(("amount", "status", "refunded"), [(1000, PaymentStatus.PARTIALLY_REFUNDED, 1000),
                                                             (None, PaymentStatus.REFUNDED, 2500)])
def test_refunds_go_through_the_neutral_service_to_the_capture(paypal_api, actor, amount, status, refunded):
    payment = charged_payment(paypal_api, actor)
    refund = payment_refund(payment=payment, actor=actor, amount=amount, idempotency_key=f"r-{payment.pk}")
    payment.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert (payment.status, payment.amount_refunded) == (status, refunded)
    sent = paypal_api.requests[-1]
    assert sent["path"].endswith("/refund") and sent["body"]["custom_id"] == f"refund-{refund.pk}"
    assert sent["request_id"] == f"refund-{refund.pk}"
