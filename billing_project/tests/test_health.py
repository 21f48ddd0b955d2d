import pytest
from django.core.cache import cache

from payments.models import ProviderEventStatus
from payments.providers.stripe.models import StripeEvent
from payments.providers.stripe.webhooks.services import webhook_rejection_record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_healthz_reports_database_ok_and_stripe_not_configured(client, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"status": "ok", "vendor": "postgresql"}
    assert body["stripe"] == {"status": "ok", "configured": False, "webhook_secret_missing": True,
                              "verification_failures_last_hour": 0, "events_failed_last_hour": 0, "problems": []}


def test_healthz_is_degraded_when_stripe_is_configured_without_a_signing_secret(client, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_WEBHOOK_SECRET = ""

    body = client.get("/healthz").json()

    assert body["status"] == "degraded" and body["stripe"]["status"] == "degraded"
    assert "STRIPE_WEBHOOK_SECRET is missing" in body["stripe"]["problems"][0]


def test_healthz_reports_recent_verification_failures_and_failed_events(
        client, settings, django_assert_max_num_queries):
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    webhook_rejection_record()
    webhook_rejection_record()
    StripeEvent.objects.create(event_id="evt_1", type="charge.refunded", payload={}, status=ProviderEventStatus.FAILED)

    with django_assert_max_num_queries(2):
        response = client.get("/healthz")

    stripe = response.json()["stripe"]
    assert response.status_code == 200  # card trouble does not take the instance out of the load balancer
    assert stripe["status"] == "degraded"
    assert stripe["verification_failures_last_hour"] == 2 and stripe["events_failed_last_hour"] == 1


def test_healthz_has_a_section_per_installed_payment_rail(client, settings):
    settings.STRIPE_SECRET_KEY = ""

    body = client.get("/healthz").json()

    assert body["manual"] == {"status": "ok", "problems": []}
    assert body["stripe"]["configured"] is False
