"""PayPal webhook verification (payments/providers/paypal/webhooks/verification.py), with deliveries the
loopback peer signs exactly as PayPal does (RSA-SHA256 over id|time|webhook id|crc32(body), certificate
served at the cert URL)."""

import json

import pytest
from django.core.cache import cache

from core.exceptions import WebhookRejected
from payments.providers.paypal.webhooks.verification import HEADERS, cert_url_allowed, webhook_event_verify


@pytest.fixture
def event(paypal_api):
    return paypal_api.webhook("PAYMENT.CAPTURE.COMPLETED", {"id": "CAP1", "status": "COMPLETED"})


def test_a_delivery_signed_as_paypal_signs_is_accepted(paypal_api, event):
    body, headers = paypal_api.signed(event)
    assert webhook_event_verify(headers=headers, body=body)["id"] == event["id"]


def test_the_certificate_is_downloaded_once_and_cached(paypal_api, event):
    cache.clear()
    before = paypal_api.cert_downloads
    for _ in range(3):
        body, headers = paypal_api.signed(event)
        webhook_event_verify(headers=headers, body=body)
    assert paypal_api.cert_downloads == before + 1
    assert cache.get(f"paypal:cert:{paypal_api.cert_url}") == paypal_api.certificate_pem


@pytest.mark.parametrize("header", HEADERS)
def test_a_missing_header_is_refused(paypal_api, event, header):
    body, headers = paypal_api.signed(event)
    del headers[header]
    with pytest.raises(WebhookRejected):
        webhook_event_verify(headers=headers, body=body)


def test_a_changed_body_is_refused(paypal_api, event):
    body, headers = paypal_api.signed(event)
    tampered = json.dumps({**event, "resource": {"id": "CAP1", "status": "REFUNDED"}}).encode()
    with pytest.raises(WebhookRejected) as raised:
        webhook_event_verify(headers=headers, body=tampered)
    assert raised.value.code == "signature_invalid"


def test_a_delivery_for_another_webhook_id_is_refused(paypal_api, event):
    body, headers = paypal_api.signed(event, webhook_id="SOMEONEELSE")
    with pytest.raises(WebhookRejected, match="Signature verification failed"):
        webhook_event_verify(headers=headers, body=body)


def test_without_a_configured_webhook_id_everything_is_refused(paypal_api, event, settings):
    settings.PAYPAL_WEBHOOK_ID = ""
    body, headers = paypal_api.signed(event)
    with pytest.raises(WebhookRejected, match="PAYPAL_WEBHOOK_ID"):
        webhook_event_verify(headers=headers, body=body)


@pytest.mark.parametrize("url", ["https://evil.example/cert.pem", "http://api.paypal.com/cert.pem",
                                 "https://paypal.com.evil.example/cert.pem", "http://127.0.0.1:1/certs/paypal.pem"])
def test_a_cert_url_off_paypal_hosts_is_refused_before_any_download(paypal_api, event, url):
    body, headers = paypal_api.signed(event, cert_url=url)
    with pytest.raises(WebhookRejected) as raised:
        webhook_event_verify(headers=headers, body=body)
    assert raised.value.code == "certificate_untrusted"


def test_paypal_hosts_are_allowed_cert_urls(paypal_api):
    assert cert_url_allowed("https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270")
    assert cert_url_allowed("https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1")
    assert cert_url_allowed(paypal_api.cert_url)


def test_another_algorithm_or_a_garbled_signature_is_refused(paypal_api, event):
    body, headers = paypal_api.signed(event)
    for changed in ({"PAYPAL-AUTH-ALGO": "SHA1withRSA"}, {"PAYPAL-TRANSMISSION-SIG": "not base64!"}):
        with pytest.raises(WebhookRejected):
            webhook_event_verify(headers={**headers, **changed}, body=body)


@pytest.mark.parametrize("body", [b"[]", b'{"id": "WH-1"}', b'{"id": "WH-1", "event_type": "X", "resource": 1}',
                                  b"\xff", b'{"id": "WH-\\u0000", "event_type": "X", "resource": {}}'])
def test_a_signed_body_that_is_not_a_storable_event_is_refused(paypal_api, body):
    signed_body, headers = paypal_api.signed(body)
    with pytest.raises(WebhookRejected) as raised:
        webhook_event_verify(headers=headers, body=signed_body)
    assert raised.value.code == "payload_invalid"
