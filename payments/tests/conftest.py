from datetime import UTC, datetime
from decimal import Decimal
from functools import wraps

import pytest
from django.db import connection

from core.audit import Actor
from payments.services import subscription_start
from payments.tests.stripe_support import (
    LOCALSTRIPE_KEY,
    WEBHOOK_SECRET,
    RecordingStripe,
    localstripe_start,
    localstripe_stop,
)
from subscriptions.models import SubscriptionStatus
from subscriptions.periods import period_boundary
from subscriptions.tests.factories import CustomerFactory, PlanFactory, SubscriptionFactory
from usage.models import MeterPrice
from usage.tests.factories import MeterFactory

# Jan 31 makes the anchor arithmetic visible: the periods end Feb 28, Mar 31, Apr 30.
T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


# Every gateway function that calls Stripe over the network.
_GUARDED_GATEWAY_CALLS = ("customer_create", "customer_retrieve", "setup_intent_create", "setup_intent_retrieve",
                          "payment_intent_charge_off_session", "payment_intent_retrieve", "checkout_session_create",
                          "checkout_session_retrieve", "refund_create")

# Every PayPal client function that calls PayPal over the network (the same rule holds for every rail).
_GUARDED_PAYPAL_CALLS = ("setup_token_create", "payment_token_create", "order_create_vaulted",
                         "order_create_for_approval", "order_capture", "order_get", "capture_get", "capture_refund",
                         "refund_get", "transactions_list")


def open_transactions() -> int:
    """Transactions (and savepoints) of the calling thread's connection, not counting the ones a
    non-transactional test wraps itself in."""
    return sum(1 for block in connection.atomic_blocks if not getattr(block, "_from_testcase", False))


@pytest.fixture(autouse=True)
def _no_transaction_across_stripe_calls(monkeypatch):
    """Fail any test in which Stripe is called with a transaction of ours open (and so, possibly, rows
    locked): the rule is commit the intent, call the provider, record the outcome in a short transaction.
    A test that replaces a gateway function itself replaces this guard too."""
    from payments.providers.stripe import gateway as stripe_gateway

    def guarded(name, call):
        @wraps(call)
        def guard(*args, **kwargs):
            assert open_transactions() == 0, f"stripe_gateway.{name} called inside a transaction"
            return call(*args, **kwargs)
        return guard

    for name in _GUARDED_GATEWAY_CALLS:
        monkeypatch.setattr(stripe_gateway, name, guarded(name, getattr(stripe_gateway, name)))
    from payments.providers.paypal import client as paypal_client

    for name in _GUARDED_PAYPAL_CALLS:
        monkeypatch.setattr(paypal_client, name, guarded(f"paypal {name}", getattr(paypal_client, name)))


@pytest.fixture
def in_memory_layer(settings):
    """A fresh in-memory channel layer per test, whatever REDIS_URL says."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def make_due_subscription(*, plan=None, customer=None, anchor=T0, status=SubscriptionStatus.ACTIVE, **fields):
    """A subscription whose first period [anchor, anchor + 1 interval) ends at `period_end`."""
    plan = plan or PlanFactory()
    customer = customer or CustomerFactory(user=None)
    end = period_boundary(anchor=anchor, interval=plan.interval, interval_count=plan.interval_count, periods=1)
    return SubscriptionFactory(customer=customer, plan=plan, status=status, billing_cycle_anchor=anchor,
                               current_period_start=anchor, current_period_end=end, **fields)


@pytest.fixture
def metered_plan(db):
    plan = PlanFactory(amount=2000, credits_per_period=100)
    meter = MeterFactory(code="api-calls", name="API calls")
    MeterPrice.objects.create(plan=plan, meter=meter, unit_amount=Decimal("0.5"), included_units=Decimal(100))
    return plan, meter


@pytest.fixture
def collect_outcomes(monkeypatch):
    """Replace the gateway seam with scripted outcomes; returns the list of invoices it was asked to charge.

    "succeeded" records a manual-style payment through the real services, so the invoice settles as it
    would after a card payment."""
    from payments import collection
    from payments.models import PaymentMethod, PaymentStatus
    from payments.services import payment_create, payment_transition

    calls = []
    script = {"outcome": "processing"}

    def fake(*, invoice, actor, now):
        calls.append((invoice.pk, invoice.attempt_count))
        outcome = script["outcome"]
        payment = None
        if outcome == "succeeded":
            payment = payment_create(customer_id=invoice.customer_id, invoice=invoice, amount=invoice.amount_due,
                                     currency=invoice.currency, method=PaymentMethod.STRIPE, provider="stripe",
                                     status=PaymentStatus.PROCESSING)
            payment_transition(payment=payment, to_status=PaymentStatus.SUCCEEDED, actor=actor, now=now)
        return collection.CollectionResult(outcome=outcome, payment=payment)

    monkeypatch.setattr(collection, "invoice_collect", fake)
    return script, calls



@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return WEBHOOK_SECRET


@pytest.fixture(scope="session")
def localstripe_url():
    """One localstripe for the whole session, on a loopback port of ours, stopped at the end."""
    process, url = localstripe_start()
    yield url
    localstripe_stop(process)


@pytest.fixture
def stripe_api(settings, localstripe_url):
    """Point the gateway at localstripe."""
    settings.STRIPE_SECRET_KEY = LOCALSTRIPE_KEY
    settings.STRIPE_API_BASE = localstripe_url
    return localstripe_url


@pytest.fixture
def recording_stripe(settings):
    """Point the gateway at a RecordingStripe (Checkout Sessions, which localstripe lacks)."""
    peer = RecordingStripe()
    settings.STRIPE_SECRET_KEY = LOCALSTRIPE_KEY
    settings.STRIPE_API_BASE = peer.url
    yield peer
    peer.close()


@pytest.fixture
def actor():
    return Actor.system("test")


@pytest.fixture
def first_invoice(actor):
    """A paid plan started without a trial: an incomplete subscription and its open first invoice."""
    customer = CustomerFactory()
    plan = PlanFactory(amount=2500, trial_days=0)
    subscription, invoice = subscription_start(customer=customer, plan=plan, actor=actor, with_trial=False)
    return invoice


@pytest.fixture(scope="session")
def paypal_peer_session():
    """One loopback PayPal (payments/tests/paypal_peer.py) for the whole session."""
    from payments.tests.paypal_peer import PayPalPeer

    peer = PayPalPeer()
    yield peer
    peer.close()


@pytest.fixture
def paypal_api(settings, paypal_peer_session):
    """Point the PayPal rail at the loopback peer, with its keys, webhook id and a short timeout."""
    from payments.tests.paypal_peer import CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID

    paypal_peer_session.reset()
    settings.PAYPAL_CLIENT_ID = CLIENT_ID
    settings.PAYPAL_CLIENT_SECRET = CLIENT_SECRET
    settings.PAYPAL_WEBHOOK_ID = WEBHOOK_ID
    settings.PAYPAL_API_BASE = paypal_peer_session.url
    settings.PAYPAL_TIMEOUT = 1.0
    return paypal_peer_session


@pytest.fixture(scope="session")
def lemonsqueezy_peer_session():
    """One loopback Lemon Squeezy (payments/tests/lemonsqueezy_peer.py) for the whole session."""
    from payments.tests.lemonsqueezy_peer import LemonSqueezyPeer

    peer = LemonSqueezyPeer()
    yield peer
    peer.close()


@pytest.fixture
def lemonsqueezy_api(settings, lemonsqueezy_peer_session):
    """Point the Lemon Squeezy rail at the loopback peer, with its key, store, signing secret and a short
    timeout."""
    from payments.tests.lemonsqueezy_peer import API_KEY, SIGNING_SECRET, STORE_ID

    lemonsqueezy_peer_session.reset()
    settings.LEMONSQUEEZY_API_KEY = API_KEY
    settings.LEMONSQUEEZY_STORE_ID = STORE_ID
    settings.LEMONSQUEEZY_SIGNING_SECRET = SIGNING_SECRET
    settings.LEMONSQUEEZY_API_BASE = lemonsqueezy_peer_session.url
    settings.LEMONSQUEEZY_TIMEOUT = 2.0
    return lemonsqueezy_peer_session
