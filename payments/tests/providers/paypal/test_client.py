"""The PayPal client (payments/providers/paypal/client.py) against the loopback peer: the SDK pointed at
PAYPAL_API_BASE, the OAuth token cached until it expires, and PayPal's errors mapped to the kernel's."""

import pytest
from django.core.cache import cache

from core.exceptions import CardDeclined, PaymentProviderError, PaymentProviderUnavailable
from payments.providers.paypal import client


def _saved_wallet(peer) -> str:
    setup = client.setup_token_create(customer_reference="", return_url="https://shop.test/ok",
                                      cancel_url="https://shop.test/no", request_id="setup-1")
    peer.approve_setup_token(setup.id)
    return client.payment_token_create(setup_token_id=setup.id, request_id="token-1").id


def test_without_keys_every_call_answers_503_naming_the_settings(settings):
    settings.PAYPAL_CLIENT_ID = ""
    with pytest.raises(PaymentProviderUnavailable, match="PAYPAL_CLIENT_ID"):
        client.order_get(order_id="ORD1")


def test_the_oauth_token_is_fetched_once_and_shared_through_the_cache(paypal_api):
    before = paypal_api.token_requests
    client.setup_token_create(customer_reference="", return_url="https://shop.test/ok",
                              cancel_url="https://shop.test/no", request_id="a")
    client._build_client.cache_clear()  # another process: no token in memory, one in Django's cache
    client.setup_token_create(customer_reference="", return_url="https://shop.test/ok",
                              cancel_url="https://shop.test/no", request_id="b")
    assert paypal_api.token_requests == before + 1


def test_an_expired_token_is_fetched_again(paypal_api):
    client.setup_token_create(customer_reference="", return_url="https://shop.test/ok",
                              cancel_url="https://shop.test/no", request_id="c")
    before = paypal_api.token_requests
    # Time passes: the cache entry lapses (its timeout is the token's lifetime less the margin) and the
    # token the SDK holds in memory reaches its expiry.
    cache.clear()
    client._client().oauth_2._o_auth_token.expiry = 0
    client.setup_token_create(customer_reference="", return_url="https://shop.test/ok",
                              cancel_url="https://shop.test/no", request_id="d")
    assert paypal_api.token_requests == before + 1


def test_wrong_credentials_answer_503(paypal_api, settings):
    settings.PAYPAL_CLIENT_SECRET = "wrong"
    with pytest.raises(PaymentProviderUnavailable):
        client.order_get(order_id="ORD1")


def test_a_saved_wallet_is_charged_at_once_in_minor_units(paypal_api):
    vault_id = _saved_wallet(paypal_api)
    order = client.order_create_vaulted(vault_id=vault_id, amount=1999, currency="USD", custom_id="payment-9",
                                        request_id="invoice-1-attempt-1")
    assert (order.status, order.payment_status, order.capture.amount, order.capture.custom_id) == \
        ("COMPLETED", "succeeded", 1999, "payment-9")
    sent = paypal_api.requests[-1]
    assert sent["body"]["purchase_units"][0]["amount"] == {"currency_code": "USD", "value": "19.99"}
    assert sent["request_id"] == "invoice-1-attempt-1"


def test_the_same_request_id_answers_the_same_order(paypal_api):
    vault_id = _saved_wallet(paypal_api)
    first = client.order_create_vaulted(vault_id=vault_id, amount=500, currency="EUR", custom_id="p",
                                        request_id="same-key")
    again = client.order_create_vaulted(vault_id=vault_id, amount=500, currency="EUR", custom_id="p",
                                        request_id="same-key")
    assert again.id == first.id
    assert len(paypal_api.captures) >= 1 and again.capture.id == first.capture.id


def test_an_order_for_approval_hands_out_the_approve_link_then_captures(paypal_api):
    order = client.order_create_for_approval(amount=1000, currency="JPY", custom_id="payment-3", request_id="o",
                                             return_url="https://shop.test/ok", cancel_url="https://shop.test/no")
    assert order.approve_url.startswith("https://www.sandbox.paypal.com/checkoutnow")
    assert paypal_api.requests[-1]["body"]["purchase_units"][0]["amount"]["value"] == "1000"
    paypal_api.approve_order(order.id)
    captured = client.order_capture(order_id=order.id, request_id="capture-o")
    assert (captured.payment_status, captured.capture.amount, captured.capture.order_id) == \
        ("succeeded", 1000, order.id)


def test_partial_and_full_refunds_of_a_capture(paypal_api):
    vault_id = _saved_wallet(paypal_api)
    capture = client.order_create_vaulted(vault_id=vault_id, amount=1000, currency="USD", custom_id="p",
                                          request_id="r-order").capture
    part = client.capture_refund(capture_id=capture.id, amount=300, currency="USD", custom_id="41", request_id="r1")
    rest = client.capture_refund(capture_id=capture.id, amount=700, currency="USD", custom_id="42", request_id="r2")
    assert (part.refund_status, part.amount, part.capture_id, part.custom_id) == ("succeeded", 300, capture.id, "41")
    assert client.refund_get(refund_id=rest.id).amount == 700
    assert client.capture_get(capture_id=capture.id).status == "REFUNDED"
    with pytest.raises(PaymentProviderError):
        client.capture_refund(capture_id=capture.id, amount=1, currency="USD", custom_id="43", request_id="r3")


@pytest.mark.parametrize(("mode", "error"), [("decline", CardDeclined), ("server_error", PaymentProviderError),
                                             ("timeout", PaymentProviderError)])
def test_provider_failures_map_to_the_kernel_errors(paypal_api, mode, error):
    vault_id = _saved_wallet(paypal_api)
    paypal_api.fail_next(mode)
    with pytest.raises(error) as raised:
        client.order_create_vaulted(vault_id=vault_id, amount=100, currency="USD", custom_id="p",
                                    request_id=f"fail-{mode}")
    assert raised.value.extra["provider"] == "paypal"


def test_transaction_search_lists_captures_and_refunds(paypal_api):
    from datetime import UTC, datetime, timedelta

    vault_id = _saved_wallet(paypal_api)
    capture = client.order_create_vaulted(vault_id=vault_id, amount=800, currency="USD", custom_id="p",
                                          request_id="t-order").capture
    refund = client.capture_refund(capture_id=capture.id, amount=200, currency="USD", custom_id="5", request_id="t-r")
    # 80 days around now: three 31-day slices (the peer's transactions are dated now), not the ~940 an
    # 80-year window asked the peer for.
    now = datetime.now(UTC)
    found = {t.id: t for t in client.transactions_list(start=now - timedelta(days=40), end=now + timedelta(days=40))}
    assert (found[capture.id].kind, found[capture.id].amount) == ("capture", 800)
    listed = found[refund.id]
    assert (listed.kind, listed.amount, listed.reference_id) == ("refund", 200, capture.id)
