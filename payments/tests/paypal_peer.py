"""A loopback PayPal for tests: a small threaded HTTP server speaking the slice of PayPal's REST API the
PayPal rail uses, and signing webhooks exactly as PayPal does.

It answers OAuth client credentials (`/v1/oauth2/token`), the vault (`/v3/vault/setup-tokens`,
`/v3/vault/payment-tokens`), orders (`/v2/checkout/orders`, create with a vaulted wallet or for approval,
get, capture), captures and refunds (`/v2/payments/captures/{id}`, `.../refund`,
`/v2/payments/refunds/{id}`) and Transaction Search (`/v1/reporting/transactions`). `PayPal-Request-Id`
is honoured (the same id on the same path answers the first answer again). `fail_next(mode)` makes the
next API call (not the token call) decline (422 INSTRUMENT_DECLINED), fail (500) or hang past the
client's timeout. Webhooks: `webhook(event_type, resource)` builds an event, `signed(event)` returns the
body and PayPal's five headers, signed with RSA-SHA256 by a self-signed certificate this peer serves at
`/certs/paypal.pem` (the cert URL in the headers).
"""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from payments.providers.paypal.payloads import amount_from_paypal, amount_to_paypal
from payments.providers.paypal.webhooks.verification import signed_message

CLIENT_ID = "peer-client-id"
CLIENT_SECRET = "peer-client-secret"
WEBHOOK_ID = "8PT597110X687430LKGECATA"


def new_id(prefix: str = "") -> str:
    return prefix + secrets.token_hex(8).upper()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _self_signed() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.peer.test")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, certificate.public_bytes(serialization.Encoding.PEM)


class PayPalPeer:
    def __init__(self, *, token_lifetime: int = 32400):
        self.lock = threading.Lock()
        self.key, self.certificate_pem = _self_signed()
        self.token_lifetime = token_lifetime
        self.token_requests = 0
        self.cert_downloads = 0
        self.requests: list[dict] = []
        self.failures: list[str] = []
        self.setup_tokens: dict[str, dict] = {}
        self.payment_tokens: dict[str, dict] = {}
        self.orders: dict[str, dict] = {}
        self.captures: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.answers: dict[tuple[str, str], tuple[int, dict]] = {}
        self.hang_seconds = 3.0
        # The status new captures get: PENDING plays an eCheck or a payment under review.
        self.capture_status = "COMPLETED"
        # The status new refunds get: PENDING plays a refund PayPal has not finished.
        self.refund_status = "COMPLETED"
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.cert_url = f"{self.url}/certs/paypal.pem"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.capture_status = self.refund_status = "COMPLETED"
            self.failures.clear()
            # Request ids are per test: database ids start again in each test database.
            self.answers.clear()
            self.requests.clear()

    # --------------------------------------------------------------------------- scripting

    def fail_next(self, mode: str, times: int = 1) -> None:
        """"decline", "server_error" or "timeout" for the next `times` API calls."""
        assert mode in ("decline", "server_error", "timeout")
        with self.lock:
            self.failures.extend([mode] * times)

    def approve_setup_token(self, token_id: str) -> None:
        with self.lock:
            self.setup_tokens[token_id]["status"] = "APPROVED"

    def approve_order(self, order_id: str) -> None:
        with self.lock:
            self.orders[order_id]["status"] = "APPROVED"

    def capture_set_status(self, capture_id: str, status: str) -> dict:
        """Change a capture as PayPal would later (PENDING -> COMPLETED); returns the capture."""
        with self.lock:
            self.captures[capture_id].update(status=status, update_time=_now())
            return json.loads(json.dumps(self.captures[capture_id]))

    def refund_set_status(self, refund_id: str, status: str) -> dict:
        with self.lock:
            self.refunds[refund_id].update(status=status, update_time=_now())
            return json.loads(json.dumps(self.refunds[refund_id]))

    # ----------------------------------------------------------------------------- webhooks

    def webhook(self, event_type: str, resource: dict, *, event_id: str | None = None,
                create_time: str | None = None) -> dict:
        resource_type = "refund" if event_type.startswith("PAYMENT.CAPTURE.REFUNDED") else \
            event_type.split(".")[1].lower()
        return {"id": event_id or new_id("WH-"), "event_version": "1.0", "create_time": create_time or _now(),
                "resource_type": resource_type, "resource_version": "2.0", "event_type": event_type,
                "summary": event_type, "resource": resource}

    def signed(self, event: dict | bytes, *, webhook_id: str = WEBHOOK_ID,
               cert_url: str | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers PayPal would send: signature over id|time|webhook id|crc32(body)."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        transmission_id = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-11f0-a0b1-{secrets.token_hex(6)}"
        transmission_time = _now()
        message = signed_message(transmission_id=transmission_id, transmission_time=transmission_time,
                                 webhook_id=webhook_id, body=body)
        signature = self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return body, {"PAYPAL-TRANSMISSION-ID": transmission_id, "PAYPAL-TRANSMISSION-TIME": transmission_time,
                      "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
                      "PAYPAL-CERT-URL": cert_url or self.cert_url, "PAYPAL-AUTH-ALGO": "SHA256withRSA"}

    # ---------------------------------------------------------------------------- the API

    def _link(self, path: str, rel: str, method: str = "GET") -> dict:
        return {"href": f"{self.url}{path}", "rel": rel, "method": method}

    def _capture(self, order: dict, *, status: str = "COMPLETED") -> dict:
        unit = order["purchase_units"][0]
        capture_id = new_id("CAP")
        capture = {"id": capture_id, "status": status, "amount": dict(unit["amount"]),
                   "custom_id": unit.get("custom_id", ""), "invoice_id": unit.get("invoice_id", ""),
                   "final_capture": True, "create_time": _now(), "update_time": _now(),
                   "supplementary_data": {"related_ids": {"order_id": order["id"]}},
                   "links": [self._link(f"/v2/payments/captures/{capture_id}", "self"),
                             self._link(f"/v2/payments/captures/{capture_id}/refund", "refund", "POST"),
                             self._link(f"/v2/checkout/orders/{order['id']}", "up")]}
        self.captures[capture_id] = capture
        unit.setdefault("payments", {}).setdefault("captures", []).append(capture)
        order["status"] = "COMPLETED"
        return capture

    def order_create(self, body: dict) -> tuple[int, dict]:
        source = (body.get("payment_source") or {}).get("paypal") or {}
        unit = dict(body["purchase_units"][0])
        amount_from_paypal(unit["amount"]["value"], unit["amount"]["currency_code"])
        order_id = new_id("ORD")
        order = {"id": order_id, "intent": body.get("intent", "CAPTURE"), "status": "CREATED",
                 "purchase_units": [unit], "create_time": _now(), "payment_source": {"paypal": {}},
                 "links": [self._link(f"/v2/checkout/orders/{order_id}", "self")]}
        self.orders[order_id] = order
        vault_id = source.get("vault_id")
        if vault_id:
            if vault_id not in self.payment_tokens:
                return 422, _error("UNPROCESSABLE_ENTITY", "INVALID_PAYMENT_SOURCE")
            order["payment_source"]["paypal"]["attributes"] = {"vault": {
                "id": vault_id, "status": "VAULTED",
                "customer": {"id": self.payment_tokens[vault_id]["customer"]["id"]}}}
            self._capture(order, status=self.capture_status)
            return 201, order
        if source.get("attributes", {}).get("vault"):
            customer_id = (source["attributes"].get("customer") or {}).get("id") or new_id("CUST")
            order["payment_source"]["paypal"]["attributes"] = {"vault": {"status": "PENDING",
                                                                         "customer": {"id": customer_id}}}
        order["status"] = "PAYER_ACTION_REQUIRED"
        order["links"].append({"href": f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}",
                               "rel": "payer-action", "method": "GET"})
        return 200, order

    def order_capture(self, order_id: str) -> tuple[int, dict]:
        order = self.orders.get(order_id)
        if order is None:
            return 404, _error("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        if order["status"] == "COMPLETED":
            return 422, _error("UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED")
        if order["status"] != "APPROVED":
            return 422, _error("UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")
        vault = order["payment_source"]["paypal"].get("attributes", {}).get("vault")
        if vault is not None:
            token = self._payment_token(customer_id=vault["customer"]["id"])
            vault.update(id=token["id"], status="VAULTED", customer={"id": token["customer"]["id"]})
        self._capture(order, status=self.capture_status)
        return 201, order

    def _payment_token(self, *, customer_id: str) -> dict:
        token_id = new_id("PT")
        token = {"id": token_id, "customer": {"id": customer_id},
                 "payment_source": {"paypal": {"email_address": "payer@example.com"}},
                 "links": [self._link(f"/v3/vault/payment-tokens/{token_id}", "self")]}
        self.payment_tokens[token_id] = token
        return token

    def setup_token_create(self, body: dict) -> tuple[int, dict]:
        token_id = new_id("ST")
        customer_id = (body.get("customer") or {}).get("id") or new_id("CUST")
        token = {"id": token_id, "status": "PAYER_ACTION_REQUIRED", "customer": {"id": customer_id},
                 "links": [{"href": f"https://www.sandbox.paypal.com/agreements/approve?approval_session_id={token_id}",
                            "rel": "approve", "method": "GET"},
                           self._link(f"/v3/vault/setup-tokens/{token_id}", "self")]}
        self.setup_tokens[token_id] = token
        return 201, token

    def payment_token_create(self, body: dict) -> tuple[int, dict]:
        setup = self.setup_tokens.get(((body.get("payment_source") or {}).get("token") or {}).get("id", ""))
        if setup is None or setup["status"] != "APPROVED":
            return 422, _error("UNPROCESSABLE_ENTITY", "TOKEN_NOT_APPROVED" if setup else "TOKEN_NOT_FOUND")
        return 201, self._payment_token(customer_id=setup["customer"]["id"])

    def capture_refund(self, capture_id: str, body: dict) -> tuple[int, dict]:
        capture = self.captures.get(capture_id)
        if capture is None:
            return 404, _error("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
        currency = capture["amount"]["currency_code"]
        amount = body.get("amount") or capture["amount"]
        wanted = amount_from_paypal(amount["value"], currency)
        done = sum(amount_from_paypal(refund["amount"]["value"], currency) for refund in self.refunds.values()
                   if refund["capture_id"] == capture_id and refund["status"] in ("COMPLETED", "PENDING"))
        captured = amount_from_paypal(capture["amount"]["value"], currency)
        if done + wanted > captured:
            return 422, _error("UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
        refund_id = new_id("REF")
        refund = {"id": refund_id, "status": self.refund_status, "amount": {"currency_code": currency,
                                                                     "value": amount_to_paypal(wanted, currency)},
                  "custom_id": body.get("custom_id", ""), "capture_id": capture_id, "create_time": _now(),
                  "update_time": _now(),
                  "links": [self._link(f"/v2/payments/refunds/{refund_id}", "self"),
                            self._link(f"/v2/payments/captures/{capture_id}", "up")]}
        self.refunds[refund_id] = refund
        capture["status"] = "REFUNDED" if done + wanted == captured else "PARTIALLY_REFUNDED"
        return 201, refund

    def transactions(self, query: dict) -> tuple[int, dict]:
        details = []
        for capture in self.captures.values():
            details.append({"transaction_info": {
                "transaction_id": capture["id"], "transaction_event_code": "T0006",
                "transaction_status": {"COMPLETED": "S", "PENDING": "P", "DECLINED": "D"}.get(capture["status"], "S"),
                "transaction_amount": capture["amount"], "custom_field": capture.get("custom_id", ""),
                "transaction_initiation_date": capture["create_time"],
                "transaction_updated_date": capture["update_time"]}})
        for refund in self.refunds.values():
            amount = dict(refund["amount"], value="-" + refund["amount"]["value"])
            details.append({"transaction_info": {
                "transaction_id": refund["id"], "transaction_event_code": "T1107",
                "transaction_status": {"COMPLETED": "S", "PENDING": "P"}.get(refund["status"], "D"),
                "transaction_amount": amount, "paypal_reference_id": refund["capture_id"],
                "custom_field": refund.get("custom_id", ""), "transaction_initiation_date": refund["create_time"],
                "transaction_updated_date": refund["update_time"]}})
        start, end = query.get("start_date", ""), query.get("end_date", "9999")
        details = [d for d in details if start <= d["transaction_info"]["transaction_initiation_date"] <= end]
        return 200, {"transaction_details": details, "total_items": len(details), "total_pages": 1, "page": 1}

    def route(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        parts = [part for part in path.split("/") if part]
        if method == "POST" and path == "/v3/vault/setup-tokens":
            return self.setup_token_create(body)
        if method == "GET" and parts[:3] == ["v3", "vault", "setup-tokens"] and len(parts) == 4:
            return _found(self.setup_tokens.get(parts[3]))
        if method == "POST" and path == "/v3/vault/payment-tokens":
            return self.payment_token_create(body)
        if method == "POST" and path == "/v2/checkout/orders":
            return self.order_create(body)
        if parts[:3] == ["v2", "checkout", "orders"] and len(parts) >= 4:
            if method == "POST" and parts[4:] == ["capture"]:
                return self.order_capture(parts[3])
            return _found(self.orders.get(parts[3]))
        if parts[:3] == ["v2", "payments", "captures"] and len(parts) >= 4:
            if method == "POST" and parts[4:] == ["refund"]:
                return self.capture_refund(parts[3], body)
            return _found(self.captures.get(parts[3]))
        if parts[:3] == ["v2", "payments", "refunds"] and len(parts) == 4:
            return _found(self.refunds.get(parts[3]))
        if method == "GET" and path == "/v1/reporting/transactions":
            return self.transactions(query)
        return 404, _error("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")


def _error(name: str, issue: str) -> dict:
    return {"name": name, "message": issue.replace("_", " ").capitalize(), "debug_id": new_id("dbg"),
            "details": [{"issue": issue, "description": issue}]}


def _found(obj: dict | None) -> tuple[int, dict]:
    return (200, obj) if obj is not None else (404, _error("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID"))


def _handler(peer: PayPalPeer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, payload: dict | bytes, content_type: str = "application/json") -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _token(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                return self._answer(401, {"error": "invalid_client",
                                          "error_description": "Client Authentication failed"})
            with peer.lock:
                peer.token_requests += 1
            return self._answer(200, {"scope": "https://uri.paypal.com/services/payments/payment",
                                      "access_token": new_id("A21AA"), "token_type": "Bearer", "app_id": "APP-PEER",
                                      "expires_in": peer.token_lifetime, "nonce": new_id()})

        def _api(self, method: str) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if not (self.headers.get("Authorization") or "").startswith("Bearer A21AA"):
                return self._answer(401, {"error": "invalid_token",
                                          "error_description": "Token signature verification failed"})
            request_id = self.headers.get("PayPal-Request-Id") or ""
            with peer.lock:
                peer.requests.append({"method": method, "path": url.path, "body": body, "request_id": request_id})
                failure = peer.failures.pop(0) if peer.failures else None
                remembered = peer.answers.get((url.path, request_id)) if request_id else None
            if failure == "timeout":
                time.sleep(peer.hang_seconds)
                return self._answer(500, _error("INTERNAL_SERVER_ERROR", "INTERNAL_SERVICE_ERROR"))
            if failure == "server_error":
                return self._answer(500, _error("INTERNAL_SERVER_ERROR", "INTERNAL_SERVICE_ERROR"))
            if failure == "decline":
                return self._answer(422, _error("UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED"))
            if remembered is None:
                with peer.lock:
                    remembered = peer.route(method, url.path, query, body)
                    if request_id and remembered[0] < 500:
                        peer.answers[(url.path, request_id)] = remembered
            return self._answer(remembered[0], remembered[1])

        def do_GET(self):
            if self.path == "/certs/paypal.pem":
                with peer.lock:
                    peer.cert_downloads += 1
                return self._answer(200, peer.certificate_pem, "application/x-pem-file")
            return self._api("GET")

        def do_POST(self):
            if self.path.startswith("/v1/oauth2/token"):
                return self._token()
            return self._api("POST")

        def log_message(self, *args):
            pass

    return Handler
