"""A loopback Lemon Squeezy for tests: a small threaded HTTP server speaking the slice of Lemon Squeezy's
JSON:API the rail uses, and signing webhooks exactly as Lemon Squeezy does (X-Signature: hex HMAC-SHA256
of the raw body with the webhook's signing secret).

It answers `POST /v1/checkouts`, `GET|PATCH /v1/subscriptions/{id}`, `POST /v1/usage-records`,
`GET /v1/orders`, `GET /v1/subscription-invoices` (paginated with `links.next`) and `GET /v1/stores/{id}`,
checks the bearer key, and refuses a non-JSON:API content type. A PATCH changes the subscription the way
Lemon Squeezy does and queues the webhook it would send (`sent`). `subscribe()` plays a customer paying a
checkout: an order, its subscription and the initial subscription invoice, with their webhooks;
`renew()` a renewal; `refund()` a refund. `fail_next()` makes the next API call answer 500.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import itertools
import json
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta

from subscriptions.periods import add_months

API_KEY = "peer-api-key"
STORE_ID = "4242"
SIGNING_SECRET = "peer-signing-secret"
PAGE_SIZE = 2


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LemonSqueezyPeer:
    def __init__(self):
        self.lock = threading.Lock()
        self.ids = itertools.count(1000)
        self.reset()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self):
        self.requests: list[dict] = []
        self.checkouts: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.orders: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.usage_records: list[dict] = []
        self.sent: list[dict] = []
        self.failures: list[int] = []
        # The custom data each subscription's checkout carried (Lemon Squeezy repeats it in every webhook).
        self.custom: dict[str, dict] = {}
        self.clock = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        self.hang_seconds = 2.5

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, mode: str = "server_error"):
        """The next API call answers 500 ("server_error") or hangs past the client's timeout ("timeout")."""
        self.failures.append(mode)

    def tick(self, **delta) -> str:
        """Move the peer's clock (every change gets a newer updated_at) and answer it."""
        self.clock += timedelta(**delta) if delta else timedelta(seconds=1)
        return stamp(self.clock)

    def new_id(self) -> str:
        return str(next(self.ids))

    # ------------------------------------------------------------------ what Lemon Squeezy sends

    def webhook(self, event_name: str, resource: dict, custom_data: dict | None = None) -> dict:
        meta = {"event_name": event_name, "test_mode": True}
        if custom_data:
            meta["custom_data"] = custom_data
        return {"meta": meta, "data": json.loads(json.dumps(resource))}

    def signed(self, event: dict, *, secret: str = SIGNING_SECRET) -> tuple[bytes, dict]:
        body = json.dumps(event).encode()
        name = event.get("meta", {}).get("event_name", "") if isinstance(event, dict) else ""
        return body, {"X-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
                      "X-Event-Name": name}

    def _send(self, event_name: str, resource: dict, custom: dict | None) -> dict:
        event = self.webhook(event_name, resource, custom)
        self.sent.append(event)
        return event

    # ------------------------------------------------------------------ the store's own life

    def subscribe(self, *, variant_id: str, custom_data: dict, total: int = 2500, currency: str = "USD",
                  usage_based: bool = False, trial_days: int = 0) -> list[dict]:
        """A customer pays a checkout: order_created, subscription_created, subscription_payment_success."""
        with self.lock:
            created = self.tick()
            customer_id, order_id, sub_id = self.new_id(), self.new_id(), self.new_id()
            order = {"type": "orders", "id": order_id, "attributes": {
                "store_id": int(STORE_ID), "customer_id": int(customer_id), "identifier": f"ord-{order_id}",
                "status": "paid", "currency": currency, "subtotal": total, "total": total, "refunded": False,
                "refunded_amount": 0, "first_order_item": {"variant_id": int(variant_id), "order_id": int(order_id)},
                "created_at": created, "updated_at": created, "test_mode": True}}
            trial_end = stamp(self.clock + timedelta(days=trial_days)) if trial_days else None
            subscription = {"type": "subscriptions", "id": sub_id, "attributes": {
                "store_id": int(STORE_ID), "customer_id": int(customer_id), "order_id": int(order_id),
                "product_id": 1, "variant_id": int(variant_id), "status": "on_trial" if trial_days else "active",
                "cancelled": False, "pause": None, "trial_ends_at": trial_end,
                "renews_at": trial_end or stamp(add_months(self.clock, 1)), "ends_at": None,
                "created_at": created, "updated_at": created, "user_email": "buyer@example.com",
                "first_subscription_item": {"id": int(self.new_id()), "subscription_id": int(sub_id),
                                            "is_usage_based": usage_based}, "test_mode": True}}
            self.orders[order_id], self.subscriptions[sub_id] = order, subscription
            self.custom[sub_id] = custom_data
            events = [self._send("order_created", order, custom_data),
                      self._send("subscription_created", subscription, custom_data)]
            if not trial_days:
                events.append(self._invoice(sub_id, created, total, currency, "initial"))
            return events

    def _invoice(self, sub_id: str, created: str, total: int, currency: str, reason: str,
                 status: str = "paid") -> dict:
        subscription = self.subscriptions[sub_id]["attributes"]
        invoice_id = self.new_id()
        invoice = {"type": "subscription-invoices", "id": invoice_id, "attributes": {
            "store_id": int(STORE_ID), "subscription_id": int(sub_id), "customer_id": subscription["customer_id"],
            "billing_reason": reason, "currency": currency, "status": status, "refunded": False,
            "subtotal": total, "tax": 0, "total": total, "created_at": created, "updated_at": created,
            "test_mode": True}}
        self.invoices[invoice_id] = invoice
        name = "subscription_payment_success" if status == "paid" else "subscription_payment_failed"
        return self._send(name, invoice, self.custom.get(sub_id))

    def renew(self, sub_id: str, *, total: int = 2500, paid: bool = True) -> list[dict]:
        """The period ends: a renewal invoice (paid or failed) and the subscription moved on."""
        with self.lock:
            attributes = self.subscriptions[sub_id]["attributes"]
            renewed_at = datetime.fromisoformat(attributes["renews_at"].replace("Z", "+00:00"))
            self.clock = max(self.clock, renewed_at)
            created = self.tick()
            invoice = self._invoice(sub_id, created, total, "USD", "renewal", "paid" if paid else "failed")
            attributes.update(status="active" if paid else "past_due", updated_at=self.tick(),
                              renews_at=stamp(add_months(renewed_at, 1)))
            return [invoice, self._send("subscription_updated", self.subscriptions[sub_id],
                                        self.custom.get(sub_id))]

    def refund(self, invoice_id: str, amount: int, *, kind: str = "subscription-invoices") -> dict:
        """Refund an invoice (or an order) up to `amount` in total, as its dashboard does; answers its webhook."""
        with self.lock:
            resource = (self.invoices if kind == "subscription-invoices" else self.orders)[invoice_id]
            attributes = resource["attributes"]
            attributes.update(refunded=amount >= attributes["total"], refunded_amount=amount,
                              status="refunded" if amount >= attributes["total"] else "partial_refund",
                              updated_at=self.tick())
            name = "subscription_payment_refunded" if kind == "subscription-invoices" else "order_refunded"
            return self._send(name, resource, self.custom.get(str(attributes.get("subscription_id"))))

    def expire(self, sub_id: str) -> dict:
        with self.lock:
            attributes = self.subscriptions[sub_id]["attributes"]
            attributes.update(status="expired", updated_at=self.tick(), ends_at=stamp(self.clock))
            return self._send("subscription_expired", self.subscriptions[sub_id], self.custom.get(sub_id))

    # ------------------------------------------------------------------ the API

    def patch_subscription(self, sub_id: str, attributes: dict) -> tuple[int, dict]:
        with self.lock:
            if sub_id not in self.subscriptions:
                return 404, {"errors": [{"detail": "Not found"}]}
            current = self.subscriptions[sub_id]["attributes"]
            event_name = "subscription_updated"
            if attributes.get("cancelled") is True:
                current.update(cancelled=True, status="cancelled", ends_at=current["renews_at"])
                event_name = "subscription_cancelled"
            if "pause" in attributes and attributes["pause"]:
                current.update(pause=attributes["pause"], status="paused")
                event_name = "subscription_paused"
            elif "pause" in attributes and current["status"] == "paused":
                current.update(pause=None, status="active")
                event_name = "subscription_unpaused"
            if attributes.get("cancelled") is False and current["status"] == "cancelled":
                current.update(cancelled=False, status="active", ends_at=None)
                event_name = "subscription_resumed"
            if "variant_id" in attributes:
                current["variant_id"] = int(attributes["variant_id"])
                event_name = "subscription_plan_changed"
            current["updated_at"] = self.tick()
            self._send(event_name, self.subscriptions[sub_id], self.custom.get(sub_id))
            return 200, {"data": self.subscriptions[sub_id]}

    def listing(self, items: list[dict], path: str, query: dict) -> dict:
        page = int((query.get("page[number]") or ["1"])[0])
        chunk = items[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
        more = page * PAGE_SIZE < len(items)
        return {"data": chunk, "links": {"next": f"{self.url}{path}?page[number]={page + 1}" if more else None}}


def _handler(peer: LemonSqueezyPeer):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: dict):
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.api+json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _route(self, method: str):
            parts = urllib.parse.urlsplit(self.path)
            path, query = parts.path.removeprefix("/v1"), urllib.parse.parse_qs(parts.query)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            peer.requests.append({"method": method, "path": path, "body": body, "query": query})
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                return self._answer(401, {"errors": [{"detail": "Unauthenticated."}]})
            if method != "GET" and self.headers.get("Content-Type") != "application/vnd.api+json":
                return self._answer(415, {"errors": [{"detail": "Unsupported media type."}]})
            if peer.failures:
                if peer.failures.pop(0) == "timeout":
                    time.sleep(peer.hang_seconds)
                return self._answer(500, {"errors": [{"detail": "Server error."}]})
            return self._answer(*_dispatch(peer, method, path, body, query))

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_PATCH(self):
            self._route("PATCH")

    return Handler


def _dispatch(peer: LemonSqueezyPeer, method: str, path: str, body: dict, query: dict) -> tuple[int, dict]:
    segments = [s for s in path.split("/") if s]
    if method == "POST" and segments == ["checkouts"]:
        data = body["data"]
        checkout_id = peer.new_id()
        peer.checkouts[checkout_id] = data
        return 201, {"data": {"type": "checkouts", "id": checkout_id, "attributes": {
            "store_id": int(data["relationships"]["store"]["data"]["id"]),
            "variant_id": int(data["relationships"]["variant"]["data"]["id"]),
            "checkout_data": data["attributes"]["checkout_data"],
            "url": f"https://peer.lemonsqueezy.test/checkout/custom/{checkout_id}", "expires_at": None}}}
    if segments[:1] == ["subscriptions"] and len(segments) == 2:
        if method == "PATCH":
            return peer.patch_subscription(segments[1], body["data"]["attributes"])
        found = peer.subscriptions.get(segments[1])
        return (200, {"data": found}) if found else (404, {"errors": [{"detail": "Not found"}]})
    if method == "POST" and segments == ["usage-records"]:
        record = {"type": "usage-records", "id": peer.new_id(), "attributes": {
            "subscription_item_id": int(body["data"]["relationships"]["subscription-item"]["data"]["id"]),
            **body["data"]["attributes"]}}
        peer.usage_records.append(record)
        return 201, {"data": record}
    if method == "POST" and len(segments) == 3 and segments[0] in ("orders", "subscription-invoices") \
            and segments[2] == "refund":
        found = (peer.orders if segments[0] == "orders" else peer.invoices).get(segments[1])
        if found is None:
            return 404, {"errors": [{"detail": "Not found"}]}
        already = found["attributes"].get("refunded_amount") or 0
        amount = int(body["data"]["attributes"]["amount"])
        if already + amount > found["attributes"]["total"]:
            return 422, {"errors": [{"detail": "The amount is more than what is left to refund."}]}
        peer.refund(segments[1], already + amount, kind=segments[0])
        return 200, {"data": found}
    if method == "GET" and segments == ["orders"]:
        return 200, peer.listing(list(peer.orders.values()), "/orders", query)
    if method == "GET" and segments == ["subscription-invoices"]:
        return 200, peer.listing(list(peer.invoices.values()), "/subscription-invoices", query)
    if method == "GET" and segments[:1] == ["stores"]:
        return 200, {"data": {"type": "stores", "id": segments[1], "attributes": {"name": "Peer store"}}}
    return 404, {"errors": [{"detail": f"No route {method} {path}"}]}
