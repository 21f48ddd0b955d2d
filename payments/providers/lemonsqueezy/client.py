"""The one module that talks to Lemon Squeezy's API (JSON:API over HTTPS, a bearer API key).

Lemon Squeezy maintains no official Python SDK, so this is a small client on `requests` (already installed
with the Stripe SDK; pinned in requirements.txt) returning this package's dataclasses (payloads.py), as
webhook bodies are read. Its base is `settings.LEMONSQUEEZY_API_BASE`, so tests point it at a loopback
peer. Errors become the kernel's: PaymentProviderUnavailable (503) when no keys are configured or the key
is refused, PaymentProviderError (502) for 5xx, timeouts, unreadable answers and other refusals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import requests
from django.conf import settings
from django.utils.translation import gettext as _

from core.exceptions import PaymentProviderError, PaymentProviderUnavailable
from payments.providers.base import PROBE_DEGRADED, PROBE_ERROR, PROBE_OK, ApiProbe
from payments.providers.lemonsqueezy.payloads import LSCheckout, LSMoney, LSSubscription, LSUsageRecord

logger = logging.getLogger(__name__)

NOT_CONFIGURED = ("Lemon Squeezy is unavailable: it is not configured (set LEMONSQUEEZY_API_KEY and "
                  "LEMONSQUEEZY_STORE_ID). Other rails and manual payments still work.")
JSON_API = "application/vnd.api+json"
# The most a listing asks for per page (Lemon Squeezy's own maximum).
PAGE_SIZE = 100
# A listing stops after this many pages rather than loop on a peer that always answers "next".
MAX_PAGES = 1000


def is_configured() -> bool:
    return bool(settings.LEMONSQUEEZY_API_KEY and settings.LEMONSQUEEZY_STORE_ID)


def _error(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(str(e.get("detail") or e.get("title") or "") for e in errors if isinstance(e, dict))[:500]
    except (ValueError, AttributeError):
        return ""


def _request(method: str, path: str, *, body: dict | None = None, params: dict | None = None) -> dict:
    if not is_configured():
        raise PaymentProviderUnavailable(NOT_CONFIGURED, extra={"provider": "lemonsqueezy"})
    url = path if path.startswith("http") else f"{settings.LEMONSQUEEZY_API_BASE.rstrip('/')}{path}"
    headers = {"Accept": JSON_API, "Content-Type": JSON_API,
               "Authorization": f"Bearer {settings.LEMONSQUEEZY_API_KEY}"}
    try:
        response = requests.request(method, url, json=body, params=params, headers=headers,
                                    timeout=settings.LEMONSQUEEZY_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise PaymentProviderError(_("Lemon Squeezy could not be reached: %(error)s.") % {"error": type(exc).__name__},
                                   extra={"provider": "lemonsqueezy"}) from exc
    if response.status_code == 401:
        raise PaymentProviderUnavailable(_("Lemon Squeezy refused the API key (LEMONSQUEEZY_API_KEY)."),
                                         extra={"provider": "lemonsqueezy"})
    if response.status_code >= 400:
        raise PaymentProviderError((_("Lemon Squeezy answered %(status)s: %(error)s")
                                    % {"status": response.status_code, "error": _error(response)}).rstrip(": "),
                                   extra={"provider": "lemonsqueezy", "status": response.status_code})
    if response.status_code == 204 or not response.content:
        return {}
    try:
        answer = response.json()
    except ValueError as exc:
        raise PaymentProviderError(_("Lemon Squeezy answered something that is not JSON."),
                                   extra={"provider": "lemonsqueezy"}) from exc
    if not isinstance(answer, dict):
        raise PaymentProviderError(_("Lemon Squeezy answered something that is not a JSON:API document."),
                                   extra={"provider": "lemonsqueezy"})
    return answer


def _data(answer: dict) -> dict:
    data = answer.get("data")
    if not isinstance(data, dict):
        raise PaymentProviderError(_("Lemon Squeezy's answer holds no resource."), extra={"provider": "lemonsqueezy"})
    return data


def _listing(path: str, *, params: dict) -> Iterator[dict]:
    """Every resource of a paginated listing, following its `links.next`."""
    answer = _request("GET", path, params={**params, "page[size]": PAGE_SIZE})
    for _page in range(MAX_PAGES):
        yield from (item for item in answer.get("data") or [] if isinstance(item, dict))
        following = (answer.get("links") or {}).get("next")
        if not following or not isinstance(following, str):
            return
        answer = _request("GET", following)


# ------------------------------------------------------------------------------ checkouts, subscriptions


def checkout_create(*, variant_id: str, custom_data: dict[str, str], email: str, name: str,
                    redirect_url: str) -> LSCheckout:
    """A hosted checkout for one variant of our store; `custom_data` comes back in the webhooks it causes."""
    body = {"data": {
        "type": "checkouts",
        "attributes": {"checkout_data": {"email": email, "name": name, "custom": custom_data},
                       "product_options": {"redirect_url": redirect_url}},
        "relationships": {"store": {"data": {"type": "stores", "id": str(settings.LEMONSQUEEZY_STORE_ID)}},
                          "variant": {"data": {"type": "variants", "id": str(variant_id)}}},
    }}
    return LSCheckout.from_resource(_data(_request("POST", "/checkouts", body=body)))


def subscription_get(*, subscription_id: str) -> LSSubscription:
    return LSSubscription.from_resource(_data(_request("GET", f"/subscriptions/{subscription_id}")))


def subscription_update(*, subscription_id: str, attributes: dict) -> LSSubscription:
    """PATCH a subscription: `{"cancelled": true}` cancels at the period end, `{"cancelled": false}` resumes,
    `{"pause": {"mode": "void"}}` pauses, `{"pause": null}` unpauses, `{"variant_id": 7}` changes the plan."""
    body = {"data": {"type": "subscriptions", "id": str(subscription_id), "attributes": attributes}}
    return LSSubscription.from_resource(_data(_request("PATCH", f"/subscriptions/{subscription_id}", body=body)))


def usage_record_set(*, subscription_item_id: str, quantity: int) -> LSUsageRecord:
    """Set the usage of a usage-priced subscription item for its current period to `quantity`. "set", not
    "increment": reporting the same total again changes nothing, so a retried run never bills twice."""
    body = {"data": {"type": "usage-records", "attributes": {"quantity": quantity, "action": "set"},
                     "relationships": {"subscription-item": {"data": {"type": "subscription-items",
                                                                      "id": str(subscription_item_id)}}}}}
    return LSUsageRecord.from_resource(_data(_request("POST", "/usage-records", body=body)))


# ------------------------------------------------------------------------------ money: refunds, reconciliation


def money_refund(*, reference: str, amount: int) -> LSMoney:
    """Refund `amount` minor units of an order or a subscription invoice ("order-12", "subscription-invoice-7",
    as LSMoney.reference names them); answers the object with its new refunded amount."""
    kind, _dash, object_id = reference.rpartition("-")
    resource = {"order": "orders", "subscription-invoice": "subscription-invoices"}.get(kind)
    if resource is None or not object_id.isdigit():
        raise PaymentProviderError(_("%(reference)r names no Lemon Squeezy order or subscription invoice.")
                                   % {"reference": reference},
                                   extra={"provider": "lemonsqueezy"})
    body = {"data": {"type": resource, "id": object_id, "attributes": {"amount": amount}}}
    return LSMoney.from_resource(_data(_request("POST", f"/{resource}/{object_id}/refund", body=body)))



def orders_list() -> list[LSMoney]:
    return [LSMoney.from_resource(item) for item in
            _listing("/orders", params={"filter[store_id]": settings.LEMONSQUEEZY_STORE_ID})]


def subscription_invoices_list() -> list[LSMoney]:
    return [LSMoney.from_resource(item) for item in
            _listing("/subscription-invoices", params={"filter[store_id]": settings.LEMONSQUEEZY_STORE_ID})]


def store_get() -> dict:
    """The configured store (one cheap authenticated call, for `/healthz?deep=1`)."""
    return _data(_request("GET", f"/stores/{settings.LEMONSQUEEZY_STORE_ID}"))


def api_probe() -> ApiProbe:
    """Read the configured store, within LEMONSQUEEZY_TIMEOUT: ok when it answers, degraded when it is slow,
    unreachable or answers 5xx (its trouble), error when it refuses our key or request (ours to fix).
    Never raises: a health check reports what went wrong."""
    started = time.monotonic()
    try:
        store_get()
        status, message = PROBE_OK, ""
    except PaymentProviderUnavailable as exc:
        status, message = PROBE_ERROR, exc.message
    except PaymentProviderError as exc:
        http_status = int(exc.extra.get("status") or 0)
        status = PROBE_ERROR if 400 <= http_status < 500 else PROBE_DEGRADED
        message = exc.message
    return ApiProbe(status=status, latency_ms=int((time.monotonic() - started) * 1000), message=message)
