"""/healthz: each enabled module's check, named; 503 only for a core module down; a hung dependency
costs the time budget, never more. The checks run in threads with their own database connections, so
tests that count rows commit them (transaction=True)."""

import threading

import pytest
from django.core.cache import cache

from billing_project.tests.hung_peer import hung_peer
from core.audit import Actor
from modules.definitions import HealthReport
from modules.services import module_configure, module_disable
from modules.tests.support import module_replaced
from payments.models import ProviderEventStatus
from payments.providers.stripe.models import StripeEvent
from payments.providers.stripe.webhooks.services import webhook_rejection_record
from payments.tests.conftest import T0, make_due_subscription

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_healthz_names_every_enabled_module_with_its_status_and_message(client, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert set(body["modules"]) == {"platform", "catalog", "subscriptions", "credits", "usage", "invoicing",
                                    "reports", "notifications",
                                    "dunning", "stripe", "paypal", "lemonsqueezy", "manual", "live",
                                    "outbound_webhooks"}
    assert body["modules"]["platform"] == {"status": "ok", "core": True, "message": "",
                                           "details": {"database": "postgresql", "cache": "local"}}
    assert body["modules"]["stripe"]["details"] == {"configured": False, "webhook_secret_missing": True,
                                                    "verification_failures_last_hour": 0,
                                                    "events_failed_last_hour": 0}
    assert body["modules"]["live"]["details"]["channel_layer"] == "InMemoryChannelLayer"
    assert body["modules"]["manual"] == {"status": "ok", "core": False, "message": ""}


@pytest.mark.django_db(transaction=True)
def test_a_disabled_modules_health_is_not_reported(client):
    module_disable(code="invoicing", actor=ACTOR)

    modules = client.get("/healthz").json()["modules"]

    assert not {"invoicing", "dunning", "stripe", "paypal", "manual"} & set(modules) and "credits" in modules


def test_stripe_configured_without_a_signing_secret_is_degraded_with_http_200(client, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = client.get("/healthz")

    stripe = response.json()["modules"]["stripe"]
    assert response.status_code == 200 and response.json()["status"] == "degraded"
    assert stripe["status"] == "degraded" and "STRIPE_WEBHOOK_SECRET is missing" in stripe["message"]


@pytest.mark.django_db(transaction=True)
def test_recent_verification_failures_and_failed_events_are_reported(client, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    webhook_rejection_record()
    webhook_rejection_record()
    StripeEvent.objects.create(event_id="evt_1", type="charge.refunded", payload={}, status=ProviderEventStatus.FAILED)

    response = client.get("/healthz")

    stripe = response.json()["modules"]["stripe"]
    assert response.status_code == 200  # card trouble does not take the instance out of the load balancer
    assert stripe["status"] == "degraded"
    details = stripe["details"]
    assert details["verification_failures_last_hour"] == 2 and details["events_failed_last_hour"] == 1


@pytest.mark.django_db(transaction=True)
def test_the_billing_runs_lag_degrades_invoicing_past_its_configured_minutes(client):
    make_due_subscription(anchor=T0)
    module_configure(code="invoicing", changes={"lag_degraded_minutes": "30"}, actor=ACTOR)

    invoicing = client.get("/healthz").json()["modules"]["invoicing"]

    assert invoicing["status"] == "degraded" and "waited" in invoicing["message"]
    assert invoicing["details"]["lag_seconds"] > 30 * 60


def test_a_hung_rail_is_reported_down_within_the_budget_and_the_instance_stays_up(client, settings):
    settings.MODULES_HEALTH_TIMEOUT = 1.0
    settings.STRIPE_SECRET_KEY = "sk_test_hung"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    with hung_peer() as port:
        settings.STRIPE_API_BASE = f"http://127.0.0.1:{port}"
        shallow = client.get("/healthz")
        deep = client.get("/healthz?deep=1")

    assert shallow.json()["modules"]["stripe"]["status"] == "ok"  # no network call without deep
    assert deep.status_code == 200 and deep.json()["status"] == "degraded"
    stripe = deep.json()["modules"]["stripe"]
    assert stripe["status"] == "down" and stripe["message"].startswith("no answer within")


def test_a_hung_core_module_answers_503_naming_it(client, settings):
    settings.MODULES_HEALTH_TIMEOUT = 1.0
    release = threading.Event()

    def hangs(deep: bool) -> HealthReport:
        release.wait(30)
        return HealthReport(status="ok")

    with module_replaced("catalog", health_check=hangs):
        response = client.get("/healthz")
    release.set()

    body = response.json()
    assert response.status_code == 503 and body["status"] == "down"
    assert body["modules"]["catalog"]["status"] == "down"
    assert body["modules"]["catalog"]["message"].startswith("no answer within")
    assert body["modules"]["platform"]["status"] == "ok"
