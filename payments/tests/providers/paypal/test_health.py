import pytest

pytestmark = pytest.mark.django_db


def test_healthz_has_a_paypal_section_that_says_it_is_not_configured(client, settings):
    settings.PAYPAL_CLIENT_ID = settings.PAYPAL_CLIENT_SECRET = settings.PAYPAL_WEBHOOK_ID = ""
    body = client.get("/healthz").json()
    section = body["modules"]["paypal"]
    assert section["status"] == "ok" and section["details"]["configured"] is False


def test_keys_without_a_webhook_id_are_degraded_but_keep_http_200(client, paypal_api, settings):
    settings.PAYPAL_WEBHOOK_ID = ""
    response = client.get("/healthz")
    section = response.json()["modules"]["paypal"]
    assert response.status_code == 200
    assert section["status"] == "degraded" and "PAYPAL_WEBHOOK_ID is missing" in section["message"]
