"""Verify a PayPal webhook delivery the way PayPal documents self-verification
(developer.paypal.com, "Integrate webhooks", REST API webhooks guide):

- the delivery carries PAYPAL-TRANSMISSION-ID, PAYPAL-TRANSMISSION-TIME, PAYPAL-TRANSMISSION-SIG,
  PAYPAL-CERT-URL and PAYPAL-AUTH-ALGO (SHA256withRSA);
- the signed message is `<transmission id>|<transmission time>|<webhook id>|<crc32 of the raw body>`,
  the CRC32 written as an unsigned decimal, and the webhook id is ours (PAYPAL_WEBHOOK_ID), so a
  delivery meant for another listener does not verify here;
- the signature is base64 RSA PKCS#1 v1.5 over SHA-256, checked with the public key of the X.509
  certificate downloaded from the cert URL.

We download the certificate only from an https URL on a paypal.com host (or from the configured
PAYPAL_API_BASE host, which is how tests point at a loopback peer): a signature checked against a
certificate the sender chose would prove nothing. Certificates are cached per URL in Django's cache
until they expire. Anything missing or wrong raises WebhookRejected (400) and nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _

from core.exceptions import WebhookRejected
from core.safe_input import json_loads_checked

HEADERS = ("PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG", "PAYPAL-CERT-URL",
           "PAYPAL-AUTH-ALGO")
AUTH_ALGO = "SHA256withRSA"
# Seconds to wait for the certificate; a slow download must not tie up the web worker.
CERT_TIMEOUT = 10
# Longest a downloaded certificate is trusted without fetching it again (less if it expires sooner).
CERT_CACHE_SECONDS = 24 * 3600
# A certificate is a few kilobytes; refuse to read a large answer into memory.
CERT_MAX_BYTES = 64 * 1024
MAX_HEADER_LENGTH = 2048


def signed_message(*, transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    """What PayPal signs: the transmission id and time, our webhook id and the body's CRC32 (decimal)."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


def cert_url_allowed(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host == "paypal.com" or host.endswith(".paypal.com")) and not parts.username:
        return True
    base = urlsplit(settings.PAYPAL_API_BASE or "")
    return bool(base.netloc) and parts.scheme == base.scheme and parts.netloc == base.netloc


def _certificate(url: str) -> x509.Certificate:
    cache_key = f"paypal:cert:{url}"
    pem = cache.get(cache_key)
    if pem is None:
        try:
            response = requests.get(url, timeout=CERT_TIMEOUT, allow_redirects=False, stream=True)
            raw = response.raw.read(CERT_MAX_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise WebhookRejected(_("The signing certificate could not be downloaded."),
                                  code="certificate_unavailable") from exc
        if response.status_code != 200 or len(raw) > CERT_MAX_BYTES:
            raise WebhookRejected(_("The signing certificate could not be downloaded."), code="certificate_unavailable")
        pem = raw
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise WebhookRejected(_("The signing certificate is not a PEM X.509 certificate."),
                              code="certificate_invalid") from exc
    now = datetime.now(UTC)
    if not (certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc):
        raise WebhookRejected(_("The signing certificate is not valid now."), code="certificate_invalid")
    lifetime = min(CERT_CACHE_SECONDS, int((certificate.not_valid_after_utc - now).total_seconds()))
    cache.set(cache_key, pem, timeout=max(lifetime, 1))
    return certificate


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for name in HEADERS:
        value = headers.get(name) or ""
        if not value or len(value) > MAX_HEADER_LENGTH or not value.isascii():
            raise WebhookRejected(f"The {name} header is missing or malformed.", code="signature_missing")
        found[name] = value
    return found


def _signature_check(found: dict[str, str], *, webhook_id: str, body: bytes) -> None:
    if found["PAYPAL-AUTH-ALGO"] != AUTH_ALGO:
        raise WebhookRejected(f"Unsupported PAYPAL-AUTH-ALGO (expected {AUTH_ALGO}).", code="signature_invalid")
    if not cert_url_allowed(found["PAYPAL-CERT-URL"]):
        raise WebhookRejected(_("PAYPAL-CERT-URL is not on a PayPal host."), code="certificate_untrusted")
    try:
        signature = base64.b64decode(found["PAYPAL-TRANSMISSION-SIG"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookRejected(_("PAYPAL-TRANSMISSION-SIG is not base64."), code="signature_invalid") from exc
    public_key = _certificate(found["PAYPAL-CERT-URL"]).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise WebhookRejected(_("The signing certificate does not hold an RSA key."), code="certificate_invalid")
    message = signed_message(transmission_id=found["PAYPAL-TRANSMISSION-ID"],
                             transmission_time=found["PAYPAL-TRANSMISSION-TIME"], webhook_id=webhook_id, body=body)
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise WebhookRejected(_("Signature verification failed."), code="signature_invalid") from exc


def _is_event(event) -> bool:
    if not isinstance(event, dict) or not isinstance(event.get("resource"), dict):
        return False
    identifiers = (event.get("id"), event.get("event_type"))
    return all(isinstance(value, str) and 0 < len(value) <= 100 for value in identifiers)


def webhook_event_verify(*, headers: Mapping[str, str], body: bytes) -> dict:
    """Check a delivery's headers and signature on the raw body; return the event as plain JSON.

    Raises WebhookRejected (400) when PAYPAL_WEBHOOK_ID is not set, a header is missing, the cert URL is
    not PayPal's, the signature does not verify, or the body is not a JSON event PostgreSQL can store.
    """
    webhook_id = settings.PAYPAL_WEBHOOK_ID
    if not webhook_id:
        raise WebhookRejected(_("The PayPal webhook id is not configured (PAYPAL_WEBHOOK_ID)."),
                              code="webhook_secret_missing")
    _signature_check(_headers(headers), webhook_id=webhook_id, body=body)
    try:
        event = json_loads_checked(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected(_("The body is not a JSON event PostgreSQL can store."), code="payload_invalid") from exc
    if not _is_event(event):
        raise WebhookRejected(_("The body is not a PayPal webhook event."), code="payload_invalid")
    return event
