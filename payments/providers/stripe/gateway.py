"""The one module that talks to Stripe (and the only one importing the SDK).

Everything else calls these functions and gets frozen dataclasses back, so the rest of the code never
depends on the SDK's object model and a test can build the same dataclasses from a webhook payload
(`*.from_payload`). Every POST carries an idempotency key chosen by the caller, so a retried request
(by the SDK after a timeout, or by our own retry of a whole operation) never charges or refunds twice.
Stripe errors become our own exceptions: CardDeclined (402), PaymentProviderError (502), and
PaymentProviderUnavailable (503) when no API key is configured.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings
from django.utils.translation import gettext as _

from core.exceptions import (
    CardDeclined,
    PaymentProviderError,
    PaymentProviderUnavailable,
    WebhookRejected,
)
from core.safe_input import DATETIME_MAX, json_loads_checked
from payments.providers.base import PROBE_DEGRADED, PROBE_ERROR, PROBE_OK, ApiProbe, CheckoutLine

logger = logging.getLogger(__name__)

# One API version for requests and for the webhook endpoint's payloads: objects keep one shape whatever
# the account's default version is. It is the version stripe==12.5.2 was generated for.
API_VERSION = "2025-08-27.basil"
# (connect, read) seconds: an off-session charge in a billing run must not hang a worker for the SDK's
# default 80 s; Stripe answers well within this.
TIMEOUT = (5.0, 30.0)
# The SDK retries connection errors and 409/5xx answers with the same idempotency key, so a retry is safe.
MAX_NETWORK_RETRIES = 2
# Seconds a signed webhook timestamp may be old: replayed captures of a genuine delivery are refused.
WEBHOOK_TOLERANCE = 300

NOT_CONFIGURED = ("Card payments are unavailable: Stripe is not configured (set STRIPE_SECRET_KEY). "
                  "Manual payments (cash, check, bank transfer) still work.")


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


@lru_cache(maxsize=4)
def _build_client(api_key: str, api_base: str) -> stripe.StripeClient:
    base_addresses = {"api": api_base} if api_base else {}
    return stripe.StripeClient(
        api_key, stripe_version=API_VERSION, base_addresses=base_addresses,
        max_network_retries=MAX_NETWORK_RETRIES, http_client=stripe.RequestsClient(timeout=TIMEOUT),
    )


def _client() -> stripe.StripeClient:
    if not is_configured():
        raise PaymentProviderUnavailable(NOT_CONFIGURED)
    return _build_client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def _error_payload(exc: stripe.StripeError) -> dict:
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error")
    return dict(error) if isinstance(error, dict) else {}


def _translate(exc: stripe.StripeError) -> Exception:
    error = _error_payload(exc)
    extra = {"provider_code": exc.code or error.get("code") or "", "request_id": exc.request_id or "",
             "http_status": exc.http_status or 0}
    intent = error.get("payment_intent")
    if isinstance(intent, dict):
        extra["payment_intent_id"] = intent.get("id", "")
    if isinstance(exc, stripe.CardError):
        extra["decline_code"] = error.get("decline_code", "")
        return CardDeclined(exc.user_message or _("The card was declined."), extra=extra)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        logger.error("Stripe rejected our API key: %s", exc)
        return PaymentProviderUnavailable(_("The payment provider rejected our credentials."), extra=extra)
    return PaymentProviderError(_("Stripe request failed: %(error)s") % {"error": exc.user_message or exc}, extra=extra)


def _call(func, *, params: dict | None = None, idempotency_key: str | None = None, object_id: str | None = None):
    """Run one SDK call and return its object as plain, recursive dicts."""
    options = {"idempotency_key": idempotency_key} if idempotency_key else {}
    try:
        args = (object_id,) if object_id else ()
        result = func(*args, params=params or {}, options=options)
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    # The documented JSON is the stable contract; the SDK object's internals are not.
    return json.loads(str(result)) if result is not None else {}


def _ts(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _id(value) -> str:
    """An expandable field: Stripe sends an id, or the object when expanded."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


# ------------------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class StripeCustomer:
    id: str
    email: str
    default_payment_method_id: str
    created: datetime | None

    @classmethod
    def from_payload(cls, data: dict) -> StripeCustomer:
        settings_ = data.get("invoice_settings") or {}
        return cls(id=data["id"], email=data.get("email") or "",
                   default_payment_method_id=_id(settings_.get("default_payment_method")),
                   created=_ts(data.get("created")))


@dataclass(frozen=True)
class SetupIntentResult:
    id: str
    status: str
    customer_id: str
    payment_method_id: str
    # Handed to Stripe.js on the front end, which collects the card and confirms the SetupIntent.
    client_secret: str
    metadata: dict = field(default_factory=dict)

    @classmethod
    def from_payload(cls, data: dict) -> SetupIntentResult:
        return cls(id=data["id"], status=data.get("status") or "", customer_id=_id(data.get("customer")),
                   payment_method_id=_id(data.get("payment_method")), client_secret=data.get("client_secret") or "",
                   metadata=dict(data.get("metadata") or {}))


@dataclass(frozen=True)
class PaymentIntentResult:
    id: str
    status: str
    amount: int
    currency: str
    customer_id: str
    payment_method_id: str
    latest_charge_id: str
    created: datetime | None
    failure_code: str = ""
    failure_message: str = ""
    metadata: dict = field(default_factory=dict)

    @classmethod
    def from_payload(cls, data: dict) -> PaymentIntentResult:
        error = data.get("last_payment_error") or {}
        return cls(id=data["id"], status=data.get("status") or "", amount=int(data.get("amount") or 0),
                   currency=(data.get("currency") or "").upper(), customer_id=_id(data.get("customer")),
                   payment_method_id=_id(data.get("payment_method")),
                   latest_charge_id=_id(data.get("latest_charge")), created=_ts(data.get("created")),
                   failure_code=error.get("decline_code") or error.get("code") or "",
                   failure_message=error.get("message") or "", metadata=dict(data.get("metadata") or {}))


@dataclass(frozen=True)
class CheckoutSessionResult:
    id: str
    # Where the customer's browser is sent to pay.
    url: str
    mode: str
    status: str
    payment_status: str
    customer_id: str
    payment_intent_id: str
    amount_total: int
    currency: str
    metadata: dict = field(default_factory=dict)

    @classmethod
    def from_payload(cls, data: dict) -> CheckoutSessionResult:
        return cls(id=data["id"], url=data.get("url") or "", mode=data.get("mode") or "",
                   status=data.get("status") or "", payment_status=data.get("payment_status") or "",
                   customer_id=_id(data.get("customer")), payment_intent_id=_id(data.get("payment_intent")),
                   amount_total=int(data.get("amount_total") or 0), currency=(data.get("currency") or "").upper(),
                   metadata=dict(data.get("metadata") or {}))


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str
    amount: int
    currency: str
    payment_intent_id: str
    charge_id: str
    # Ours (refund_id, payment_id): finds our refund when a webhook comes before its Stripe id is stored.
    metadata: dict = field(default_factory=dict)
    created: datetime | None = None

    @classmethod
    def from_payload(cls, data: dict) -> RefundResult:
        return cls(id=data["id"], status=data.get("status") or "", amount=int(data.get("amount") or 0),
                   currency=(data.get("currency") or "").upper(), payment_intent_id=_id(data.get("payment_intent")),
                   charge_id=_id(data.get("charge")), metadata=dict(data.get("metadata") or {}),
                   created=_ts(data.get("created")))


@dataclass(frozen=True)
class ChargeResult:
    id: str
    status: str
    amount: int
    amount_refunded: int
    currency: str
    payment_intent_id: str
    paid: bool
    created: datetime | None
    # Refunds Stripe listed on the charge (only when the payload carries them; newer API versions
    # leave `refunds` out unless expanded, and then only amount_refunded says what was refunded).
    refunds: tuple[RefundResult, ...] = ()

    @classmethod
    def from_payload(cls, data: dict) -> ChargeResult:
        listed = (data.get("refunds") or {}).get("data") or []
        return cls(id=data["id"], status=data.get("status") or "", amount=int(data.get("amount") or 0),
                   amount_refunded=int(data.get("amount_refunded") or 0),
                   currency=(data.get("currency") or "").upper(), payment_intent_id=_id(data.get("payment_intent")),
                   paid=bool(data.get("paid")), created=_ts(data.get("created")),
                   refunds=tuple(RefundResult.from_payload(r) for r in listed if isinstance(r, dict)))


@dataclass(frozen=True)
class DisputeResult:
    id: str
    status: str
    reason: str
    amount: int
    currency: str
    charge_id: str
    payment_intent_id: str
    created: datetime | None

    @classmethod
    def from_payload(cls, data: dict) -> DisputeResult:
        return cls(id=data["id"], status=data.get("status") or "", reason=data.get("reason") or "",
                   amount=int(data.get("amount") or 0), currency=(data.get("currency") or "").upper(),
                   charge_id=_id(data.get("charge")), payment_intent_id=_id(data.get("payment_intent")),
                   created=_ts(data.get("created")))


# ------------------------------------------------------------------------------------------ calls


def account_ping() -> None:
    """The cheapest authenticated call (the account's balance), for `/healthz?deep=1`."""
    _call(_client().v1.balance.retrieve)


def api_probe() -> ApiProbe:
    """`account_ping`, timed and classified for the health check; never raises."""
    started = time.monotonic()
    try:
        account_ping()
        status, message = PROBE_OK, ""
    except PaymentProviderUnavailable as exc:
        status, message = PROBE_ERROR, exc.message
    except PaymentProviderError as exc:
        http_status = int(exc.extra.get("http_status") or 0)
        status = PROBE_ERROR if 400 <= http_status < 500 else PROBE_DEGRADED
        message = exc.message
    except Exception as exc:  # noqa: BLE001 - whatever the SDK raised, /healthz reports it and stays up
        logger.warning("Stripe health probe failed: %r", exc)
        status, message = PROBE_ERROR, f"Stripe could not be asked ({exc.__class__.__name__})."
    return ApiProbe(status=status, latency_ms=int((time.monotonic() - started) * 1000), message=message)


def customer_create(*, email: str, name: str, metadata: dict, idempotency_key: str) -> StripeCustomer:
    data = _call(_client().v1.customers.create, params={"email": email, "name": name, "metadata": metadata},
                 idempotency_key=idempotency_key)
    return StripeCustomer.from_payload(data)


def customer_retrieve(*, customer_id: str) -> StripeCustomer:
    return StripeCustomer.from_payload(_call(_client().v1.customers.retrieve, object_id=customer_id))


def setup_intent_create(*, customer_id: str, metadata: dict, idempotency_key: str) -> SetupIntentResult:
    """A SetupIntent that saves a card for later off-session charges (renewals)."""
    data = _call(_client().v1.setup_intents.create,
                 params={"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"],
                         "metadata": metadata},
                 idempotency_key=idempotency_key)
    return SetupIntentResult.from_payload(data)


def setup_intent_retrieve(*, setup_intent_id: str) -> SetupIntentResult:
    return SetupIntentResult.from_payload(_call(_client().v1.setup_intents.retrieve, object_id=setup_intent_id))


def payment_intent_charge_off_session(*, customer_id: str, payment_method_id: str, amount: int, currency: str,
                                      metadata: dict, idempotency_key: str) -> PaymentIntentResult:
    """Create and confirm a PaymentIntent on a saved card while the customer is away.

    A decline raises CardDeclined (its extra carries the PaymentIntent id when Stripe sends it);
    a card that needs the customer (3-D Secure) comes back with status requires_action.
    """
    data = _call(_client().v1.payment_intents.create,
                 params={"amount": amount, "currency": currency.lower(), "customer": customer_id,
                         "payment_method": payment_method_id, "payment_method_types": ["card"],
                         "confirm": True, "off_session": True, "metadata": metadata},
                 idempotency_key=idempotency_key)
    return PaymentIntentResult.from_payload(data)


def payment_intent_retrieve(*, payment_intent_id: str) -> PaymentIntentResult:
    return PaymentIntentResult.from_payload(
        _call(_client().v1.payment_intents.retrieve, object_id=payment_intent_id))


def checkout_session_create(*, customer_id: str, lines: Sequence[CheckoutLine], currency: str, success_url: str,
                            cancel_url: str, metadata: dict, idempotency_key: str,
                            save_payment_method: bool) -> CheckoutSessionResult:
    """A hosted Checkout page in `payment` mode: we stay the billing engine, so Checkout collects the
    money for one invoice of ours; `save_payment_method` keeps the card for off-session renewals."""
    payment_intent_data: dict[str, Any] = {"metadata": metadata}
    if save_payment_method:
        payment_intent_data["setup_future_usage"] = "off_session"
    params = {
        "mode": "payment",
        "customer": customer_id,
        "client_reference_id": str(metadata.get("invoice_id", "")),
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata,
        "payment_intent_data": payment_intent_data,
        "line_items": [
            {"quantity": line.quantity,
             "price_data": {"currency": currency.lower(), "unit_amount": line.unit_amount,
                            "product_data": {"name": line.name[:250]}}}
            for line in lines
        ],
    }
    data = _call(_client().v1.checkout.sessions.create, params=params, idempotency_key=idempotency_key)
    return CheckoutSessionResult.from_payload(data)


def checkout_session_retrieve(*, session_id: str) -> CheckoutSessionResult:
    return CheckoutSessionResult.from_payload(_call(_client().v1.checkout.sessions.retrieve, object_id=session_id))


def refund_create(*, payment_intent_id: str, amount: int, metadata: dict, idempotency_key: str) -> RefundResult:
    """Refund part or all of a PaymentIntent's charge. `metadata` carries our refund's id, which Stripe
    echoes on the refund in every webhook, and the same key always gets the same refund."""
    data = _call(_client().v1.refunds.create,
                 params={"payment_intent": payment_intent_id, "amount": amount, "metadata": metadata},
                 idempotency_key=idempotency_key)
    return RefundResult.from_payload(data)


# ---------------------------------------------------------------------------------- reconciliation

# Objects per page of a list (Stripe's maximum): fewer requests for a month of payments.
LIST_PAGE_SIZE = 100


def _list_all(func, *, params: dict) -> list[dict]:
    """Every object of a list, page after page (the SDK's auto-pagination), as plain dicts."""
    try:
        page = func(params={**params, "limit": LIST_PAGE_SIZE}, options={})
        return [json.loads(str(obj)) for obj in page.auto_paging_iter()]
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def _created_range(since: datetime, until: datetime) -> dict:
    # Stripe's `created` is whole seconds: [floor(since), ceil(until)) covers the window.
    end = int(until.timestamp()) + (0 if until.timestamp().is_integer() else 1)
    return {"gte": int(since.timestamp()), "lt": end}


def payment_intents_list(*, since: datetime, until: datetime) -> list[PaymentIntentResult]:
    """Every PaymentIntent created in [since, until), for reconciliation."""
    return [PaymentIntentResult.from_payload(data) for data in
            _list_all(_client().v1.payment_intents.list, params={"created": _created_range(since, until)})]


def refunds_list(*, since: datetime, until: datetime) -> list[RefundResult]:
    """Every Refund created in [since, until), for reconciliation."""
    return [RefundResult.from_payload(data) for data in
            _list_all(_client().v1.refunds.list, params={"created": _created_range(since, until)})]


# --------------------------------------------------------------------------------------- webhooks


def webhook_event_verify(*, payload: bytes, signature_header: str, secret: str) -> dict:
    """Check a delivery's signature and age on the raw body and return the event as plain JSON.

    Raises WebhookRejected (400) for a missing secret, a bad or stale signature, or a body that is not
    a JSON event; the caller stores nothing then.
    """
    if not secret:
        raise WebhookRejected(_("The webhook signing secret is not configured (STRIPE_WEBHOOK_SECRET)."),
                              code="webhook_secret_missing")
    if not signature_header:
        raise WebhookRejected(_("The Stripe-Signature header is missing."), code="signature_missing")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookRejected(_("The body is not UTF-8 JSON."), code="payload_invalid") from exc
    try:
        stripe.WebhookSignature.verify_header(text, signature_header, secret, tolerance=WEBHOOK_TOLERANCE)
    except stripe.SignatureVerificationError as exc:
        code = "timestamp_outside_tolerance" if "tolerance" in str(exc) else "signature_invalid"
        raise WebhookRejected(f"Signature verification failed: {exc.user_message or exc}", code=code) from exc
    # Parsed here, not by the SDK: a signed body is still only trusted to be what Stripe sent, and the
    # inbox stores it as jsonb, so it must be an event PostgreSQL can store (no NUL, no lone surrogate,
    # no NaN, bounded depth), or nothing is stored.
    try:
        event = json_loads_checked(text)
    except ValueError as exc:
        raise WebhookRejected(f"The body is not a JSON event PostgreSQL can store: {exc}",
                              code="payload_invalid") from exc
    if not _is_event(event):
        raise WebhookRejected(_("The body is not a Stripe event."), code="payload_invalid")
    return event


# 9999-12-30T00:00:00Z: a `created` past it cannot be stored as a timestamp Python reads back.
_LATEST_TIMESTAMP = int(DATETIME_MAX.timestamp()) - 86400


def _is_event(event) -> bool:
    if not isinstance(event, dict) or event.get("object") != "event":
        return False
    identifiers = (event.get("id"), event.get("type"))
    if not all(isinstance(value, str) and 0 < len(value) <= 100 for value in identifiers):
        return False
    created = event.get("created")
    data = event.get("data")
    return (created is None or (isinstance(created, int) and not isinstance(created, bool)
                                and 0 <= created <= _LATEST_TIMESTAMP)) \
        and isinstance(data, dict) and isinstance(data.get("object"), dict)
