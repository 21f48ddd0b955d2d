"""One harness per payment rail for the contract suite: how the suite gets a saved payment method, makes
the rail's peer fail, and speaks the rail's webhooks. Adding a rail means adding one harness here (and
its name to RAILS in conftest.py); the tests themselves never name a rail.

- stripe: the SDK against localstripe (a process), a small failing peer for 5xx and timeouts, webhooks
  signed as Stripe signs them;
- paypal: the SDK against payments/tests/paypal_peer.py, which also fails on demand and signs webhooks as
  PayPal does;
- lemonsqueezy: a merchant of record against payments/tests/lemonsqueezy_peer.py (JSON:API, webhooks signed
  with X-Signature): mirrored, never charged, so the charge tests skip and the mirror tests run;
- manual: in process; it charges nothing off-session and has no webhooks, so those tests skip.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from datetime import datetime

import pytest

from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.providers import Capability, ChargeRequest, CustomerAccount, SetupRequest, provider_for
from payments.services.payment_sync import observed_now

PATHS = {"stripe": "payments.providers.stripe.provider.StripeProvider",
         "paypal": "payments.providers.paypal.provider.PayPalProvider",
         "lemonsqueezy": "payments.providers.lemonsqueezy.provider.LemonSqueezyProvider",
         "manual": "payments.providers.manual.ManualProvider"}
MANUAL = PATHS["manual"]


class FailingPeer:
    """Answers every request with a 500, or after `hang_seconds` (past the client's timeout)."""

    def __init__(self, *, mode: str, hang_seconds: float = 3.0):
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if peer.mode == "timeout":
                    time.sleep(hang_seconds)
                body = json.dumps({"error": {"type": "api_error", "message": "Internal error"}}).encode()
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.mode = mode
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Harness:
    code = ""
    method = ""
    # What the suite may expect of this rail; tests needing something else skip, saying so.
    capabilities: frozenset[Capability] = frozenset()

    def __init__(self, *, settings, request):
        self.settings, self.request = settings, request
        settings.PAYMENT_PROVIDERS = [PATHS[self.code]] if self.code == "manual" else [PATHS[self.code], MANUAL]

    @property
    def rail(self):
        return provider_for(self.code)

    def account(self, customer, *, declining: bool = False) -> CustomerAccount:
        raise NotImplementedError

    def charge(self, payment: Payment, account: CustomerAccount, actor) -> Payment:
        """The collection's two steps: the call (no transaction open), then the apply on the locked row."""
        from django.db import transaction

        from payments.services import payment_lock

        result = self.rail.charge_off_session(ChargeRequest(
            account=account, amount=payment.amount, currency=payment.currency,
            idempotency_key=f"contract-charge-{payment.pk}", metadata={"payment_id": str(payment.pk)}))
        with transaction.atomic():
            locked = payment_lock(payment_id=payment.pk)
            self.rail.charge_apply(payment=locked, result=result, observed_at=observed_now(), actor=actor,
                                   reason="contract charge")
        return locked

    def pending_payment(self, customer, amount: int) -> Payment:
        return Payment.objects.create(customer=customer, amount=amount, currency=customer.currency,
                                      method=self.method, provider=self.code)

    def paid_payment(self, customer, amount: int, actor) -> Payment:
        return self.charge(self.pending_payment(customer, amount), self.account(customer), actor)

    def fail_next(self, mode: str) -> None:
        raise NotImplementedError

    def drifted_payment(self, customer, amount: int, actor) -> Payment:
        """A payment still processing here that the provider has since completed (its message was lost)."""
        raise NotImplementedError

    # Reconciliation: the provider's id of a payment as it lists it, a refund made at the provider itself
    # (its dashboard; returns the refund's id there), and a peer that forgets every past transaction.
    def listed_reference(self, payment: Payment) -> str:
        raise NotImplementedError

    def refund_at_provider(self, payment: Payment, amount: int) -> str:
        raise NotImplementedError

    def transactions_forget(self) -> None:
        raise NotImplementedError

    # Webhooks: the rail's message saying a payment is at `status` (as of `at`), a refund of it made at the
    # provider, and a delivery of either, signed as the provider signs (or not).
    def processing_payment(self, customer, amount: int, actor) -> Payment:
        raise NotImplementedError

    def payment_event(self, payment: Payment, status: str, at: datetime) -> dict:
        raise NotImplementedError

    def refund_event(self, payment: Payment, amount: int, at: datetime) -> dict:
        raise NotImplementedError

    def deliver(self, client, event: dict, *, tamper: bool = False):
        raise NotImplementedError

    def events_stored(self) -> int:
        raise NotImplementedError


class ManualHarness(Harness):
    code = "manual"
    method = PaymentMethod.CASH

    def paid_payment(self, customer, amount: int, actor) -> Payment:
        return self.rail.payment_record(customer=customer, amount=amount, method=self.method, actor=actor)


class StripeHarness(Harness):
    code = "stripe"
    method = PaymentMethod.STRIPE
    capabilities = frozenset({Capability.OFF_SESSION_CHARGE, Capability.REFUNDS, Capability.WEBHOOKS,
                              Capability.SAVED_PAYMENT_METHODS, Capability.RECONCILIATION})

    def __init__(self, *, settings, request):
        super().__init__(settings=settings, request=request)
        from payments.tests.stripe_support import LOCALSTRIPE_KEY, WEBHOOK_SECRET

        self.api = request.getfixturevalue("localstripe_url")
        settings.STRIPE_SECRET_KEY = LOCALSTRIPE_KEY
        settings.STRIPE_API_BASE = self.api
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET

    def account(self, customer, *, declining: bool = False) -> CustomerAccount:
        from payments.providers.stripe import gateway
        from payments.tests.stripe_support import localstripe_post

        account = self.rail.customer_account_ensure(customer=customer)
        setup = self.rail.setup_session_create(SetupRequest(account=account, idempotency_key=f"setup-{customer.pk}"))
        method = "pm_card_chargeCustomerFail" if declining else "pm_card_visa"
        localstripe_post(self.api, f"/v1/setup_intents/{setup.reference}/confirm",
                         {"payment_method": method, "client_secret": setup.client_secret})
        saved = gateway.setup_intent_retrieve(setup_intent_id=setup.reference).payment_method_id
        return CustomerAccount(provider=self.code, customer_id=customer.pk, reference=account.reference,
                               default_payment_method=saved)

    def fail_next(self, mode: str) -> None:
        from payments.providers.stripe import gateway

        self.request.getfixturevalue("monkeypatch").setattr(gateway, "MAX_NETWORK_RETRIES", 0)
        self.request.getfixturevalue("monkeypatch").setattr(gateway, "TIMEOUT", (1.0, 1.0))
        gateway._build_client.cache_clear()
        peer = FailingPeer(mode=mode)
        self.request.addfinalizer(peer.close)
        self.request.addfinalizer(gateway._build_client.cache_clear)
        self.settings.STRIPE_API_BASE = peer.url

    def drifted_payment(self, customer, amount: int, actor) -> Payment:
        # Stripe took the money; our books kept the "processing" an asynchronous capture answers first,
        # and the payment_intent.succeeded webhook never came.
        from dataclasses import replace

        from django.db import transaction

        from payments.services import payment_lock

        payment = self.pending_payment(customer, amount)
        result = self.rail.charge_off_session(ChargeRequest(
            account=self.account(customer), amount=amount, currency=payment.currency,
            idempotency_key=f"contract-drift-{payment.pk}", metadata={"payment_id": str(payment.pk)}))
        with transaction.atomic():
            locked = payment_lock(payment_id=payment.pk)
            self.rail.charge_apply(payment=locked, result=replace(result, status=PaymentStatus.PROCESSING,
                                                                  provider_status="processing"),
                                   observed_at=observed_now(), actor=actor, reason="contract charge")
        return locked

    def listed_reference(self, payment: Payment) -> str:
        return payment.provider_payment_id

    def refund_at_provider(self, payment: Payment, amount: int) -> str:
        from payments.providers.stripe import gateway

        return gateway.refund_create(payment_intent_id=payment.provider_payment_id, amount=amount, metadata={},
                                     idempotency_key=f"dashboard-refund-{payment.pk}").id

    def transactions_forget(self) -> None:
        import urllib.request

        from payments.tests.stripe_support import LOCALSTRIPE_KEY

        urllib.request.urlopen(urllib.request.Request(
            f"{self.api}/_config/payments", headers={"Authorization": f"Bearer {LOCALSTRIPE_KEY}"},
            method="DELETE"), timeout=10).close()

    def processing_payment(self, customer, amount: int, actor) -> Payment:
        from payments.tests.stripe_support import new_id

        return Payment.objects.create(customer=customer, amount=amount, currency=customer.currency,
                                      method=self.method, provider=self.code, status=PaymentStatus.PROCESSING,
                                      provider_payment_id=new_id("pi"))

    def payment_event(self, payment: Payment, status: str, at: datetime) -> dict:
        from payments.tests.stripe_support import payment_intent_object, stripe_event

        intent = payment_intent_object(id=payment.provider_payment_id, amount=payment.amount,
                                       status=status, currency=payment.currency.lower(), created=int(at.timestamp()))
        return stripe_event(f"payment_intent.{status}", intent, created=int(at.timestamp()))

    def refund_event(self, payment: Payment, amount: int, at: datetime) -> dict:
        from payments.tests.stripe_support import charge_object, new_id, stripe_event

        charge = charge_object(id=payment.provider_charge_id or new_id("ch"), amount=payment.amount,
                               payment_intent=payment.provider_payment_id, amount_refunded=amount,
                               currency=payment.currency.lower(), created=int(at.timestamp()))
        return stripe_event("charge.refunded", charge, created=int(at.timestamp()))

    def deliver(self, client, event: dict, *, tamper: bool = False):
        from payments.tests.stripe_support import deliver, stripe_signature

        if not tamper:
            return deliver(client, event)
        signed = json.dumps(event).encode()
        return deliver(client, signed.replace(b"}", b" }", 1), signature=stripe_signature(signed))

    def events_stored(self) -> int:
        from payments.providers.stripe.models import StripeEvent

        return StripeEvent.objects.count()


class PayPalHarness(Harness):
    code = "paypal"
    method = PaymentMethod.PAYPAL
    capabilities = frozenset({Capability.OFF_SESSION_CHARGE, Capability.REFUNDS, Capability.SAVED_PAYMENT_METHODS,
                              Capability.RECONCILIATION, Capability.WEBHOOKS})

    def __init__(self, *, settings, request):
        super().__init__(settings=settings, request=request)
        self.peer = request.getfixturevalue("paypal_api")

    def account(self, customer, *, declining: bool = False) -> CustomerAccount:
        from payments.providers.paypal import client

        setup = client.setup_token_create(customer_reference="", return_url="https://shop.test/ok",
                                          cancel_url="https://shop.test/no", request_id=f"setup-{customer.pk}")
        self.peer.approve_setup_token(setup.id)
        token = client.payment_token_create(setup_token_id=setup.id, request_id=f"token-{customer.pk}")
        if declining:
            self.peer.fail_next("decline")
        return CustomerAccount(provider=self.code, customer_id=customer.pk, reference=token.customer_reference,
                               default_payment_method=token.id)

    def fail_next(self, mode: str) -> None:
        self.peer.fail_next(mode)

    def drifted_payment(self, customer, amount: int, actor) -> Payment:
        self.peer.capture_status = "PENDING"
        payment = self.paid_payment(customer, amount, actor)
        self.peer.capture_status = "COMPLETED"
        order = self.peer.orders[self.rail.payment_reference(payment=payment)]
        self.peer.capture_set_status(order["purchase_units"][0]["payments"]["captures"][-1]["id"], "COMPLETED")
        return payment

    def listed_reference(self, payment: Payment) -> str:
        return payment.provider_charge_id

    def refund_at_provider(self, payment: Payment, amount: int) -> str:
        from payments.providers.paypal import client

        return client.capture_refund(capture_id=payment.provider_charge_id, amount=amount, currency=payment.currency,
                                     custom_id="", request_id=f"dashboard-refund-{payment.pk}").id

    def transactions_forget(self) -> None:
        self.peer.captures.clear()
        self.peer.refunds.clear()

    def processing_payment(self, customer, amount: int, actor) -> Payment:
        # A capture PayPal holds as PENDING (an eCheck, a review): what the charge's answer left here.
        self.peer.capture_status = "PENDING"
        payment = self.paid_payment(customer, amount, actor)
        self.peer.capture_status = "COMPLETED"
        payment.refresh_from_db()
        return payment

    def payment_event(self, payment: Payment, status: str, at: datetime) -> dict:
        word = {"succeeded": "COMPLETED", "processing": "PENDING"}[status]
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        capture = dict(self.peer.captures[payment.provider_charge_id], status=word, update_time=stamp)
        return self.peer.webhook(f"PAYMENT.CAPTURE.{word}", capture, create_time=stamp)

    def refund_event(self, payment: Payment, amount: int, at: datetime) -> dict:
        from payments.providers.paypal.payloads import amount_to_paypal

        value = {"currency_code": payment.currency.upper(), "value": amount_to_paypal(amount, payment.currency)}
        refund = self.peer.capture_refund(payment.provider_charge_id, {"amount": value})[1]
        refund["update_time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return self.peer.webhook("PAYMENT.CAPTURE.REFUNDED", refund)

    def deliver(self, client, event: dict, *, tamper: bool = False):
        from core.tests.jobs_support import jobs_run_queued
        from payments.providers.inbox import PROVIDER_EVENT_APPLY_TASK

        body, headers = self.peer.signed(event)
        if tamper:
            body = body.replace(b"}", b" }", 1)
        response = client.post("/webhooks/paypal/", data=body, content_type="application/json", headers=headers)
        jobs_run_queued(task_name=PROVIDER_EVENT_APPLY_TASK)  # as a worker would
        return response

    def events_stored(self) -> int:
        from payments.providers.paypal.models import PayPalEvent

        return PayPalEvent.objects.count()


class LemonSqueezyHarness(Harness):
    """A merchant of record: it charges the customer itself, so a "paid payment" is what its webhooks
    mirror after a checkout at payments/tests/lemonsqueezy_peer.py (which signs them as Lemon Squeezy
    does); the suite's charge and processing-payment tests skip, its mirror tests run."""

    code = "lemonsqueezy"
    method = PaymentMethod.LEMONSQUEEZY
    capabilities = frozenset({Capability.REFUNDS, Capability.MERCHANT_OF_RECORD})

    def __init__(self, *, settings, request):
        super().__init__(settings=settings, request=request)
        self.peer = request.getfixturevalue("lemonsqueezy_api")
        settings.LEMONSQUEEZY_TIMEOUT = 1.0
        self.variant = 0

    def fail_next(self, mode: str) -> None:
        self.peer.fail_next(mode)

    def mirror_events(self, customer, amount: int) -> list[dict]:
        """What the provider sends when `customer` pays a checkout for a plan sold through it."""
        from payments.models import ProviderPlanPrice
        from subscriptions.tests.factories import PlanFactory

        self.variant += 1
        plan = PlanFactory(amount=amount, trial_days=0, currency=customer.currency)
        ProviderPlanPrice.objects.create(plan=plan, provider=self.code, provider_price_id=str(700 + self.variant))
        return self.peer.subscribe(variant_id=str(700 + self.variant), total=amount, currency=customer.currency,
                                   custom_data={"customer_id": str(customer.pk), "plan_id": str(plan.pk)})

    def paid_payment(self, customer, amount: int, actor) -> Payment:
        for event in self.mirror_events(customer, amount):
            self.deliver(None, event)
        return Payment.objects.get(customer=customer, provider=self.code)

    def deliver(self, client, event: dict, *, tamper: bool = False):
        from payments.providers.lemonsqueezy.webhooks.services import lemonsqueezy_event_receive
        from payments.tests.providers.lemonsqueezy.support import jobs_drain

        body, headers = self.peer.signed(event)
        if tamper:
            body = body.replace(b"}", b" }", 1)
        if client is None:
            lemonsqueezy_event_receive(body=body, headers=headers)
            jobs_drain()
            return None
        response = client.post("/webhooks/lemonsqueezy/", data=body, content_type="application/json",
                               headers=headers)
        jobs_drain()  # as a worker would
        return response

    def events_stored(self) -> int:
        from payments.providers.lemonsqueezy.models import LemonSqueezyEvent

        return LemonSqueezyEvent.objects.count()


def requires(rail: Harness, capability: Capability) -> None:
    """Skip the calling test, saying why, when the rail does not offer `capability`."""
    if capability not in rail.capabilities:
        pytest.skip(f"the {rail.code} rail does not offer {capability.value}")


HARNESSES = {"stripe": StripeHarness, "paypal": PayPalHarness, "lemonsqueezy": LemonSqueezyHarness,
             "manual": ManualHarness}
