"""Test helpers for Stripe: signed webhook deliveries shaped like Stripe's, Stripe objects of the pinned
API version, and a localstripe server for the gateway tests."""

import hashlib
import hmac
import json
import secrets
import select
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from core.tests.jobs_support import jobs_run_queued
from payments.providers.inbox import PROVIDER_EVENT_APPLY_TASK
from payments.providers.stripe.gateway import API_VERSION

WEBHOOK_SECRET = "whsec_test_" + "5" * 32
LOCALSTRIPE_KEY = "sk_test_localstripe"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


# ------------------------------------------------------------------------------------------ signing


def stripe_signature(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends: t=<ts>,v1=<HMAC-SHA256 of "<ts>.<payload>">."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_payload(event: dict) -> bytes:
    # Stripe sends pretty-printed JSON; the signature covers these exact bytes.
    return json.dumps(event, indent=2).encode()


def deliver(client, event: dict | bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None,
            signature: str | None = None, apply: bool = True):
    """POST a delivery to /webhooks/stripe/ signed as Stripe signs it; with `apply` (the default), then
    run the apply jobs it queued, as a worker would, so a test reads the applied outcome."""
    payload = event if isinstance(event, bytes) else event_payload(event)
    header = signature if signature is not None else stripe_signature(payload, secret=secret, timestamp=timestamp)
    response = client.post("/webhooks/stripe/", data=payload, content_type="application/json",
                           headers={"Stripe-Signature": header})
    if apply:
        jobs_run_queued(task_name=PROVIDER_EVENT_APPLY_TASK)
    return response


# ------------------------------------------------------------------------------------------- events


def stripe_event(event_type: str, obj: dict, *, created: int | None = None, event_id: str | None = None,
                 previous_attributes: dict | None = None) -> dict:
    data = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created if created is not None else int(time.time()),
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": new_id("req"), "idempotency_key": secrets.token_hex(16)},
        "type": event_type,
    }


def payment_intent_object(*, id: str, amount: int, status: str, customer: str | None = None,
                          payment_method: str | None = "pm_card_visa", latest_charge: str | None = None,
                          currency: str = "usd", created: int | None = None, metadata: dict | None = None,
                          last_payment_error: dict | None = None) -> dict:
    return {
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": amount if status == "succeeded" else 0,
        "application": None, "application_fee_amount": None, "automatic_payment_methods": None,
        "canceled_at": int(time.time()) if status == "canceled" else None,
        "cancellation_reason": "abandoned" if status == "canceled" else None, "capture_method": "automatic_async",
        "client_secret": f"{id}_secret_{secrets.token_hex(8)}", "confirmation_method": "automatic",
        "created": created or int(time.time()), "currency": currency, "customer": customer, "description": None,
        "excluded_payment_method_types": None, "last_payment_error": last_payment_error,
        "latest_charge": latest_charge, "livemode": False, "metadata": metadata or {}, "next_action": None,
        "on_behalf_of": None, "payment_method": payment_method, "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"installments": None, "mandate_options": None, "network": None,
                                            "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "processing": None, "receipt_email": None, "review": None,
        "setup_future_usage": None, "shipping": None, "source": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": status, "transfer_data": None, "transfer_group": None,
    }


def card_declined_error(charge: str) -> dict:
    return {"charge": charge, "code": "card_declined", "decline_code": "insufficient_funds",
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "message": "Your card has insufficient funds.", "type": "card_error"}


def refund_object(*, id: str, amount: int, charge: str, payment_intent: str, status: str = "succeeded",
                  currency: str = "usd") -> dict:
    return {"id": id, "object": "refund", "amount": amount, "balance_transaction": new_id("txn"), "charge": charge,
            "created": int(time.time()), "currency": currency, "destination_details": {"card": {"type": "refund"}},
            "metadata": {}, "payment_intent": payment_intent, "reason": "requested_by_customer",
            "receipt_number": None, "source_transfer_reversal": None, "status": status, "transfer_reversal": None}


def charge_object(*, id: str, amount: int, payment_intent: str, amount_refunded: int = 0,
                  customer: str | None = None, currency: str = "usd", refunds: list[dict] | None = None,
                  created: int | None = None) -> dict:
    """A charge as API 2025-08-27 sends it: no `refunds` list unless expanded (pass `refunds` for that)."""
    obj = {
        "id": id, "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": amount_refunded,
        "application": None, "balance_transaction": new_id("txn"),
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "captured": True, "created": created or int(time.time()), "currency": currency, "customer": customer,
        "description": None, "disputed": False, "failure_code": None, "failure_message": None, "livemode": False,
        "metadata": {}, "outcome": {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                                    "seller_message": "Payment complete.", "type": "authorized"},
        "paid": True, "payment_intent": payment_intent, "payment_method": "pm_card_visa",
        "payment_method_details": {"card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
                                   "type": "card"},
        "receipt_url": None, "refunded": amount_refunded >= amount, "status": "succeeded",
    }
    if refunds is not None:
        obj["refunds"] = {"object": "list", "data": refunds, "has_more": False, "total_count": len(refunds),
                          "url": f"/v1/charges/{id}/refunds"}
    return obj


def dispute_object(*, id: str, amount: int, charge: str, payment_intent: str, reason: str = "fraudulent",
                   currency: str = "usd", created: int | None = None) -> dict:
    return {"id": id, "object": "dispute", "amount": amount, "balance_transactions": [], "charge": charge,
            "created": created or int(time.time()), "currency": currency,
            "evidence_details": {"due_by": int(time.time()) + 7 * 86400, "has_evidence": False, "past_due": False,
                                 "submission_count": 0},
            "is_charge_refundable": False, "livemode": False, "metadata": {}, "payment_intent": payment_intent,
            "reason": reason, "status": "needs_response"}


def checkout_session_object(*, id: str, customer: str, amount_total: int, payment_intent: str | None,
                            metadata: dict, payment_status: str = "paid", currency: str = "usd") -> dict:
    return {
        "id": id, "object": "checkout.session", "after_expiration": None, "allow_promotion_codes": None,
        "amount_subtotal": amount_total, "amount_total": amount_total, "billing_address_collection": None,
        "cancel_url": "https://billing.example.com/cancel", "client_reference_id": metadata.get("invoice_id"),
        "created": int(time.time()) - 60, "currency": currency, "customer": customer,
        "customer_details": {"email": "customer@example.com", "name": None, "tax_exempt": "none"},
        "expires_at": int(time.time()) + 86000, "livemode": False, "metadata": metadata, "mode": "payment",
        "payment_intent": payment_intent, "payment_method_types": ["card"], "payment_status": payment_status,
        "status": "complete", "success_url": "https://billing.example.com/done", "url": None,
    }


def setup_intent_object(*, id: str, customer: str, payment_method: str, metadata: dict | None = None,
                        created: int | None = None) -> dict:
    return {"id": id, "object": "setup_intent", "application": None, "cancellation_reason": None,
            "client_secret": f"{id}_secret_{secrets.token_hex(8)}", "created": created or int(time.time()),
            "customer": customer, "description": None, "last_setup_error": None, "latest_attempt": new_id("setatt"),
            "livemode": False, "mandate": None, "metadata": metadata or {}, "next_action": None,
            "payment_method": payment_method, "payment_method_types": ["card"], "status": "succeeded",
            "usage": "off_session"}


def customer_object(*, id: str, email: str, default_payment_method: str | None,
                    created: int | None = None) -> dict:
    return {"id": id, "object": "customer", "address": None, "balance": 0, "created": created or int(time.time()),
            "currency": "usd", "default_source": None, "delinquent": False, "description": None, "email": email,
            "invoice_prefix": "ABC123", "invoice_settings": {"custom_fields": None,
                                                             "default_payment_method": default_payment_method,
                                                             "footer": None, "rendering_options": None},
            "livemode": False, "metadata": {}, "name": "Customer", "phone": None, "preferred_locales": [],
            "shipping": None, "tax_exempt": "none"}


# --------------------------------------------------------------------------------------- localstripe


def localstripe_start(*, timeout: float = 20.0) -> tuple[subprocess.Popen, str]:
    """Start localstripe on a loopback port the system picks; it prints the port once it listens."""
    script = Path(__file__).with_name("localstripe_server.py")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError(f"localstripe did not start: {line}{process.stderr.read()[-2000:]}")
    return process, f"http://127.0.0.1:{int(line)}"


def localstripe_stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def localstripe_post(base_url: str, path: str, data: dict) -> dict:
    """A raw form POST, for what Stripe.js does in a customer's browser (confirming a SetupIntent)."""
    request = urllib.request.Request(f"{base_url}{path}", data=urllib.parse.urlencode(data).encode(),
                                     headers={"Authorization": f"Bearer {LOCALSTRIPE_KEY}"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class RecordingStripe:
    """A loopback HTTP peer for the one API localstripe lacks (Checkout Sessions): it records each
    request (path, headers, form fields) and answers with a session shaped like Stripe's."""

    def __init__(self):
        import http.server
        import threading

        self.requests: list[dict] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                fields = dict(urllib.parse.parse_qsl(body))
                recorder.requests.append({"path": self.path, "headers": dict(self.headers), "fields": fields})
                session_id = new_id("cs_test")
                answer = checkout_session_object(
                    id=session_id, customer=fields.get("customer", ""), payment_intent=None, payment_status="unpaid",
                    amount_total=int(fields.get("line_items[0][price_data][unit_amount]", 0)),
                    metadata={k[9:-1]: v for k, v in fields.items() if k.startswith("metadata[")})
                answer.update(status="open", url=f"https://checkout.stripe.com/c/pay/{session_id}")
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        # A port the system picks: other pytest workers start peers of their own at the same time.
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------ the customer's account


def stripe_account(customer):
    """The customer's Stripe ProviderAccount as stored now (None when it has none)."""
    from payments.models import ProviderAccount

    return ProviderAccount.objects.filter(customer_id=customer.pk, provider="stripe").first()


def stripe_account_set(customer, *, customer_id: str | None = None, payment_method: str = "", set_at=None):
    """Give the customer a Stripe account (its Stripe id, a saved card), as the rail's services leave it."""
    from payments.models import ProviderAccount

    account, _ = ProviderAccount.objects.update_or_create(
        customer_id=customer.pk, provider="stripe",
        defaults={"provider_customer_id": customer_id, "default_payment_method_id": payment_method,
                  "default_payment_method_set_at": set_at})
    return account


def stripe_account_id(customer) -> str | None:
    account = stripe_account(customer)
    return account.provider_customer_id if account is not None else None


def stripe_card(customer) -> str:
    account = stripe_account(customer)
    return account.default_payment_method_id if account is not None else ""


def stripe_card_set_at(customer):
    account = stripe_account(customer)
    return account.default_payment_method_set_at if account is not None else None
