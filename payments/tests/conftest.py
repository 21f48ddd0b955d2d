import pytest
from django.core.cache import cache

from billing_project.audit import Actor
from payments.services import subscription_start
from payments.tests.stripe_support import (
    LOCALSTRIPE_KEY,
    WEBHOOK_SECRET,
    localstripe_start,
    localstripe_stop,
)
from subscriptions.tests.factories import CustomerFactory, PlanFactory


@pytest.fixture(autouse=True)
def _fresh_cache():
    # The webhook rejection counter lives in the cache; each test starts from zero.
    cache.clear()
    yield
    cache.clear()


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
def actor():
    return Actor.system("test")


@pytest.fixture
def first_invoice(actor):
    """A paid plan started without a trial: an incomplete subscription and its open first invoice."""
    customer = CustomerFactory()
    plan = PlanFactory(amount=2500, trial_days=0)
    subscription, invoice = subscription_start(customer=customer, plan=plan, actor=actor, with_trial=False)
    return invoice
