"""The one module that talks to PayPal's REST API (and the only one importing its SDK, paypal-server-sdk).

The SDK's controllers do the transport (base URI, OAuth bearer header, JSON bodies, `PayPal-Request-Id`);
we read each answer's JSON ourselves into this package's dataclasses (payloads.py), as webhook payloads
are, so nothing outside this module depends on the SDK's object model. Its base URI is
`settings.PAYPAL_API_BASE` (a subclass of the SDK's Configuration overrides `get_base_uri`), so tests
point it at a loopback peer. The OAuth client-credentials token is kept in Django's cache until it
expires, shared by every process. Errors become the kernel's: CardDeclined (402) for a declined payer,
PaymentProviderError (502) for 5xx, timeouts and other refusals, PaymentProviderUnavailable (503) when no
keys are configured or PayPal refuses them.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from functools import lru_cache

import requests
from apimatic_core.exceptions.auth_validation_exception import AuthValidationException
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _
from paypalserversdk.configuration import Configuration, Environment
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.models.o_auth_token import OAuthToken
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from core.exceptions import CardDeclined, PaymentProviderError, PaymentProviderUnavailable
from payments.providers.base import PROBE_DEGRADED, PROBE_ERROR, PROBE_OK, ApiProbe
from payments.providers.paypal.payloads import (
    PayPalCapture,
    PayPalOrder,
    PayPalPaymentToken,
    PayPalRefund,
    PayPalSetupToken,
    PayPalTransaction,
    amount_to_paypal,
)

logger = logging.getLogger(__name__)

# Seconds before its stated expiry that a cached token is dropped, so no request leaves with a token that
# expires on the way.
TOKEN_EXPIRY_MARGIN = 60
# The longest window one Transaction Search request may cover.
SEARCH_WINDOW = timedelta(days=31)
NOT_CONFIGURED = ("PayPal payments are unavailable: PayPal is not configured (set PAYPAL_CLIENT_ID and "
                  "PAYPAL_CLIENT_SECRET). Card and manual payments (cash, check, bank transfer) still work.")
# 422 issues that mean the payer's funding source said no (PayPal's "Orders v2" error catalogue): the
# customer must act, as with a declined card; anything else unprocessable is our request's fault.
DECLINE_ISSUES = frozenset({"INSTRUMENT_DECLINED", "PAYER_ACTION_REQUIRED", "TRANSACTION_REFUSED",
                            "PAYER_CANNOT_PAY", "PAYEE_BLOCKED_TRANSACTION", "COMPLIANCE_VIOLATION",
                            "PAYMENT_SOURCE_DECLINED_BY_PROCESSOR", "PAYMENT_SOURCE_CANNOT_BE_USED",
                            "AGREEMENT_ALREADY_CANCELLED", "REFERENCED_CARD_EXPIRED", "PAYMENT_DENIED"})


# The order the deep health check reads: none has this id, so PayPal's 404 proves it accepted our token
# (a refused token is a 401) with a read every app may make, that touches nothing.
HEALTH_PROBE_ORDER_ID = "HEALTH-CHECK-PROBE"


def is_configured() -> bool:
    return bool(settings.PAYPAL_CLIENT_ID and settings.PAYPAL_CLIENT_SECRET)


class _Configuration(Configuration):
    """The SDK's configuration with its base URI taken from PAYPAL_API_BASE instead of the two fixed
    environments, so the same code talks to live, sandbox or a loopback peer."""

    def __init__(self, *, api_base: str, **kwargs):
        self._api_base = api_base.rstrip("/")
        super().__init__(**kwargs)

    def get_base_uri(self, server=None):
        return self._api_base



def _token_cache_key(client_id: str, api_base: str) -> str:
    return f"paypal:oauth:{api_base}:{client_id}"


def _token_provider(client_id: str, api_base: str):
    """The SDK asks this for a token whenever the one it holds is missing or expired: answer the one in
    Django's cache (fetched by any process), else fetch one and cache it until shortly before it expires."""
    def provide(last_token, auth_manager):
        cached = cache.get(_token_cache_key(client_id, api_base))
        if cached:
            return OAuthToken.from_dictionary(cached)
        token = auth_manager.fetch_token()
        lifetime = int(getattr(token, "expires_in", 0) or 0) - TOKEN_EXPIRY_MARGIN
        if lifetime > 0:
            cache.set(_token_cache_key(client_id, api_base),
                      {"access_token": token.access_token, "token_type": token.token_type,
                       "expires_in": token.expires_in, "expiry": token.expiry}, timeout=lifetime)
        return token
    return provide


@lru_cache(maxsize=4)
def _build_client(client_id: str, client_secret: str, api_base: str, timeout: float) -> PaypalServersdkClient:
    credentials = ClientCredentialsAuthCredentials(
        o_auth_client_id=client_id, o_auth_client_secret=client_secret,
        o_auth_token_provider=_token_provider(client_id, api_base), o_auth_clock_skew=TOKEN_EXPIRY_MARGIN)
    config = _Configuration(api_base=api_base, environment=Environment.PRODUCTION, timeout=timeout,
                            max_retries=0, client_credentials_auth_credentials=credentials)
    return PaypalServersdkClient(config=config)


def _client() -> PaypalServersdkClient:
    if not is_configured():
        raise PaymentProviderUnavailable(NOT_CONFIGURED, extra={"provider": "paypal"})
    return _build_client(settings.PAYPAL_CLIENT_ID, settings.PAYPAL_CLIENT_SECRET, settings.PAYPAL_API_BASE,
                         settings.PAYPAL_TIMEOUT)


def _error_body(exc: ApiException) -> dict:
    try:
        body = json.loads(exc.response.text or "{}")
    except (ValueError, AttributeError):
        return {}
    return body if isinstance(body, dict) else {}


def _translate(exc: ApiException) -> Exception:
    status = getattr(exc.response, "status_code", 0) or 0
    body = _error_body(exc)
    issues = [detail.get("issue", "") for detail in body.get("details") or [] if isinstance(detail, dict)]
    extra = {"provider": "paypal", "paypal_name": body.get("name") or body.get("error") or "",
             "debug_id": body.get("debug_id") or "", "issues": issues, "http_status": status}
    if status == 401 or body.get("error") == "invalid_client":
        logger.error("PayPal refused our client credentials: %s", body)
        return PaymentProviderUnavailable(_("The payment provider rejected our credentials."), extra=extra)
    if status == 422 and DECLINE_ISSUES.intersection(issues):
        return CardDeclined(_("PayPal declined the payment."), extra=extra)
    message = body.get("message") or body.get("error_description") or f"HTTP {status}"
    return PaymentProviderError(_("PayPal request failed: %(error)s") % {"error": message}, extra=extra)


def _call(method, options: dict) -> dict:
    """Run one SDK call and return its JSON answer as plain dicts."""
    try:
        response = method(options)
    except ApiException as exc:
        raise _translate(exc) from exc
    except AuthValidationException as exc:
        # PayPal gave a token that is expired on arrival (our clock or theirs is off).
        raise PaymentProviderError(_("PayPal's access token could not be used."), extra={"provider": "paypal"}) from exc
    except requests.RequestException as exc:
        # A read timeout arrives as a ConnectionError once urllib3 gives up; either way the outcome of the
        # call is unknown, and the same PayPal-Request-Id on a retry answers what PayPal did.
        raise PaymentProviderError(_("PayPal did not answer (%(error)s).") % {"error": exc.__class__.__name__},
                                   extra={"provider": "paypal", "outcome_unknown": True}) from exc
    try:
        body = json.loads(response.text or "{}")
    except ValueError as exc:
        raise PaymentProviderError(_("PayPal answered something that is not JSON."),
                                   extra={"provider": "paypal"}) from exc
    return body if isinstance(body, dict) else {}


# ------------------------------------------------------------------------------------------ vault


def setup_token_create(*, customer_reference: str, return_url: str, cancel_url: str,
                       request_id: str) -> PayPalSetupToken:
    """Start saving a PayPal wallet: the answer's approve link is where the payer agrees."""
    source = {"paypal": {"usage_type": "MERCHANT", "usage_pattern": "SUBSCRIPTION_PREPAID",
                         "experience_context": {"return_url": return_url, "cancel_url": cancel_url}}}
    body = {"payment_source": source}
    if customer_reference:
        body["customer"] = {"id": customer_reference}
    return PayPalSetupToken.from_payload(_call(_client().vault.create_setup_token,
                                               {"body": body, "paypal_request_id": request_id}))


def payment_token_create(*, setup_token_id: str, request_id: str) -> PayPalPaymentToken:
    """Turn an approved setup token into the saved wallet (a payment token) charges use later."""
    body = {"payment_source": {"token": {"id": setup_token_id, "type": "SETUP_TOKEN"}}}
    return PayPalPaymentToken.from_payload(_call(_client().vault.create_payment_token,
                                                 {"body": body, "paypal_request_id": request_id}))


# ----------------------------------------------------------------------------------------- orders


def _purchase_unit(*, amount: int, currency: str, custom_id: str, invoice_id: str, description: str) -> dict:
    unit = {"amount": {"currency_code": currency.upper(), "value": amount_to_paypal(amount, currency)},
            "custom_id": custom_id[:127]}
    if invoice_id:
        unit["invoice_id"] = invoice_id[:127]
    if description:
        unit["description"] = description[:127]
    return unit


def order_create_vaulted(*, vault_id: str, amount: int, currency: str, custom_id: str, request_id: str,
                         invoice_id: str = "", description: str = "") -> PayPalOrder:
    """Charge a saved wallet while the payer is away: with a vaulted source PayPal captures at once."""
    body = {"intent": "CAPTURE",
            "purchase_units": [_purchase_unit(amount=amount, currency=currency, custom_id=custom_id,
                                              invoice_id=invoice_id, description=description)],
            "payment_source": {"paypal": {"vault_id": vault_id}}}
    return PayPalOrder.from_payload(_call(_client().orders.create_order,
                                          {"body": body, "paypal_request_id": request_id,
                                           "prefer": "return=representation"}))


def order_create_for_approval(*, amount: int, currency: str, custom_id: str, request_id: str,
                              return_url: str, cancel_url: str, invoice_id: str = "", description: str = "",
                              store_in_vault: bool = False, customer_reference: str = "") -> PayPalOrder:
    """An order the payer approves on PayPal (its approve link); captured afterwards by `order_capture`."""
    paypal = {"experience_context": {"return_url": return_url, "cancel_url": cancel_url,
                                     "user_action": "PAY_NOW"}}
    if store_in_vault:
        # Vault the wallet on capture, under our id for the customer when we have one.
        paypal["attributes"] = {"vault": {"store_in_vault": "ON_SUCCESS", "usage_type": "MERCHANT"}}
        if customer_reference:
            paypal["attributes"]["customer"] = {"id": customer_reference}
    body = {"intent": "CAPTURE",
            "purchase_units": [_purchase_unit(amount=amount, currency=currency, custom_id=custom_id,
                                              invoice_id=invoice_id, description=description)],
            "payment_source": {"paypal": paypal}}
    return PayPalOrder.from_payload(_call(_client().orders.create_order,
                                          {"body": body, "paypal_request_id": request_id,
                                           "prefer": "return=representation"}))


def order_capture(*, order_id: str, request_id: str) -> PayPalOrder:
    return PayPalOrder.from_payload(_call(_client().orders.capture_order,
                                          {"id": order_id, "paypal_request_id": request_id,
                                           "prefer": "return=representation"}))


def order_get(*, order_id: str) -> PayPalOrder:
    return PayPalOrder.from_payload(_call(_client().orders.get_order, {"id": order_id}))


# ------------------------------------------------------------------------------ captures, refunds


def capture_get(*, capture_id: str) -> PayPalCapture:
    return PayPalCapture.from_payload(_call(_client().payments.get_captured_payment, {"capture_id": capture_id}))


def capture_refund(*, capture_id: str, amount: int, currency: str, custom_id: str,
                   request_id: str) -> PayPalRefund:
    """Refund part or all of a capture; `custom_id` (our refund id) comes back in its webhooks."""
    body = {"amount": {"currency_code": currency.upper(), "value": amount_to_paypal(amount, currency)},
            "custom_id": custom_id[:127]}
    return PayPalRefund.from_payload(_call(_client().payments.refund_captured_payment,
                                           {"capture_id": capture_id, "body": body, "paypal_request_id": request_id,
                                            "prefer": "return=representation"}))


def refund_get(*, refund_id: str) -> PayPalRefund:
    return PayPalRefund.from_payload(_call(_client().payments.get_refund, {"refund_id": refund_id}))


def transactions_list(*, start: datetime, end: datetime, page_size: int = 500) -> list[PayPalTransaction]:
    """Every transaction (captures and refunds) PayPal reports in [start, end): Transaction Search answers
    at most 31 days per request, so longer windows are asked for in slices, each read to its last page."""
    transactions: list[PayPalTransaction] = []
    while start < end:
        slice_end = min(end, start + SEARCH_WINDOW)
        transactions.extend(_transactions_slice(start=start, end=slice_end, page_size=page_size))
        start = slice_end
    return transactions


def _transactions_slice(*, start: datetime, end: datetime, page_size: int) -> list[PayPalTransaction]:
    transactions: list[PayPalTransaction] = []
    page = 1
    while True:
        body = _call(_client().transaction_search.search_transactions,
                     {"start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "end_date": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "fields": "transaction_info",
                      "page_size": page_size, "page": page})
        transactions.extend(PayPalTransaction.from_payload(detail)
                            for detail in body.get("transaction_details") or [] if isinstance(detail, dict))
        if page >= int(body.get("total_pages") or 1):
            return transactions
        page += 1


# ----------------------------------------------------------------------------------------- health


def api_probe() -> ApiProbe:
    """Fetch (or reuse the cached) OAuth token and make one cheap authenticated GET, within PAYPAL_TIMEOUT.
    Never raises: a health check reports what went wrong."""
    started = time.monotonic()
    try:
        _call(_client().orders.get_order, {"id": HEALTH_PROBE_ORDER_ID})
        status, message = PROBE_OK, ""
    except PaymentProviderUnavailable as exc:
        status, message = PROBE_ERROR, exc.message
    except (PaymentProviderError, CardDeclined) as exc:
        http_status = int(exc.extra.get("http_status") or 0)
        if http_status == 404:
            status, message = PROBE_OK, ""
        elif 400 <= http_status < 500:
            status, message = PROBE_ERROR, exc.message
        else:
            status, message = PROBE_DEGRADED, exc.message
    except Exception as exc:  # noqa: BLE001 - whatever the SDK raised, /healthz reports it and stays up
        logger.warning("PayPal health probe failed: %r", exc)
        status, message = PROBE_ERROR, f"PayPal could not be asked ({exc.__class__.__name__})."
    return ApiProbe(status=status, latency_ms=int((time.monotonic() - started) * 1000), message=message)
