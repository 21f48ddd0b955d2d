"""Verify a Lemon Squeezy webhook delivery as Lemon Squeezy documents it ("Signing requests"): the
`X-Signature` header is the hex HMAC-SHA256 of the raw body keyed with the webhook's signing secret
(LEMONSQUEEZY_SIGNING_SECRET), compared in constant time. Lemon Squeezy sends no event id and no
timestamp header; `event_id_derive` names each delivery instead (docs/lemonsqueezy.md). Anything missing
or wrong raises WebhookRejected (400) and nothing is stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from django.conf import settings

from core.exceptions import WebhookRejected
from core.safe_input import json_loads_checked

SIGNATURE_HEADER = "X-Signature"
# A hex SHA-256 digest is 64 characters; anything much longer is not one.
MAX_SIGNATURE_LENGTH = 128


def signature_for(*, body: bytes, secret: str) -> str:
    """What Lemon Squeezy puts in X-Signature for `body`."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _is_event(event) -> bool:
    if not isinstance(event, dict):
        return False
    meta, data = event.get("meta"), event.get("data")
    if not isinstance(meta, dict) or not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
        return False
    name, kind, object_id = meta.get("event_name"), data.get("type"), data.get("id")
    return (isinstance(name, str) and 0 < len(name) <= 100 and isinstance(kind, str) and 0 < len(kind) <= 50
            and isinstance(object_id, str | int) and not isinstance(object_id, bool) and 0 < len(str(object_id)) <= 64
            and isinstance(meta.get("custom_data") or {}, dict))


def event_id_derive(event: dict) -> str:
    """A stable id for a delivery that has none: the event's name, its object's type and id, and the
    object's `updated_at` ("subscription_updated:subscriptions:42:2026-01-01T00:00:00.000000Z"). A
    redelivery of the same message names the same id (stored once); the next change of the object has a
    newer updated_at and so a new id. An object without updated_at falls back to the SHA-256 of its
    attributes, which is as stable."""
    data = event["data"]
    updated_at = data["attributes"].get("updated_at")
    if isinstance(updated_at, str) and 0 < len(updated_at) <= 64:
        moment = updated_at
    else:
        moment = hashlib.sha256(repr(sorted(data["attributes"].items())).encode()).hexdigest()[:32]
    return f"{event['meta']['event_name']}:{data['type']}:{data['id']}:{moment}"[:255]


def webhook_event_verify(*, headers: Mapping[str, str], body: bytes) -> dict:
    """Check the signature on the raw body; return the event as plain JSON.

    Raises WebhookRejected (400) when the signing secret is not configured, the header is missing or wrong,
    or the body is not a JSON Lemon Squeezy event PostgreSQL can store."""
    secret = settings.LEMONSQUEEZY_SIGNING_SECRET
    if not secret:
        raise WebhookRejected("The Lemon Squeezy signing secret is not configured (LEMONSQUEEZY_SIGNING_SECRET).",
                              code="webhook_secret_missing")
    given = headers.get(SIGNATURE_HEADER) or ""
    if not given or len(given) > MAX_SIGNATURE_LENGTH or not given.isascii():
        raise WebhookRejected("The X-Signature header is missing or malformed.", code="signature_missing")
    if not hmac.compare_digest(given.strip().lower(), signature_for(body=body, secret=secret)):
        raise WebhookRejected("Signature verification failed.", code="signature_invalid")
    try:
        event = json_loads_checked(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected("The body is not a JSON event PostgreSQL can store.", code="payload_invalid") from exc
    if not _is_event(event):
        raise WebhookRejected("The body is not a Lemon Squeezy webhook event.", code="payload_invalid")
    return event
