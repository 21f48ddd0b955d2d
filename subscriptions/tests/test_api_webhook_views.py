"""Staff register outbound webhook endpoints and work the delivery log through the API; customers get nothing."""

import pytest

from billing_project.tests.admin_helpers import staff_user
from billing_project.tests.api_support import api_customer, staff_client, token_client
from core.tests.jobs_support import jobs_queued
from outbound_webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from outbound_webhooks.services import WEBHOOK_DELIVER_TASK, webhook_event_emit
from outbound_webhooks.tests.factories import WebhookEndpointFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhook-endpoints/"
DELIVERIES = "/api/v1/webhook-deliveries/"


def test_staff_register_an_endpoint_and_get_its_generated_secret_once():
    client = staff_client()
    response = client.post(ENDPOINTS, {"url": "https://crm.example.com/hooks", "event_types": ["invoice.paid"],
                                       "description": "CRM"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["invoice.paid"] and body["enabled"]
    assert WebhookEndpoint.objects.get().secret == body["secret"]
    assert "secret" not in client.get(f"{ENDPOINTS}{body['id']}/").json()


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://crm.example.com/", "event_types": ["invoice.paid"]}, "url"),
    ({"url": "http://10.0.0.5/hooks", "event_types": ["invoice.paid"]}, "url"),
    ({"url": "http://[::1]/hooks", "event_types": ["invoice.paid"]}, "url"),
    ({"url": "https://crm.example.com/", "event_types": ["invoice.exploded"]}, "event_types"),
    ({"url": "https://crm.example.com/", "event_types": []}, "event_types"),
    ({"url": "https://crm.example.com/", "event_types": ["invoice.paid"], "secret": "short"}, "secret"),
])
def test_bad_registrations_are_a_400_naming_the_field_and_store_nothing(body, field):
    response = staff_client().post(ENDPOINTS, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not WebhookEndpoint.objects.exists()


def test_enabling_an_endpoint_the_system_disabled_clears_its_failure_record():
    endpoint = WebhookEndpointFactory(enabled=False, disabled_reason="failing for 3 days")
    response = staff_client().patch(f"{ENDPOINTS}{endpoint.pk}/", {"enabled": True}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is True and response.json()["disabled_reason"] == ""


def test_the_delivery_log_shows_status_and_staff_redeliver_with_the_permission_for_it():
    endpoint = WebhookEndpointFactory()
    webhook_event_emit(event_type="invoice.paid", object_type="invoice", object_id=5, data={})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED, last_response_code=500)
    listed = staff_client().get(DELIVERIES, {"status": "failed", "endpoint": endpoint.pk}).json()["results"]
    assert [(d["id"], d["event_type"], d["last_response_code"]) for d in listed] == [(delivery.pk, "invoice.paid", 500)]

    viewer = token_client(staff_user("outbound_webhooks.view_webhookdelivery", username="viewer"))
    assert viewer.post(f"{DELIVERIES}{delivery.pk}/redeliver/").status_code == 403
    redeliverer = token_client(staff_user("outbound_webhooks.redeliver_webhookdelivery", username="redeliverer"))
    response = redeliverer.post(f"{DELIVERIES}{delivery.pk}/redeliver/")
    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert {"delivery_id": delivery.pk, "manual": True} in [j.args for j in jobs_queued(task_name=WEBHOOK_DELIVER_TASK)]


def test_customers_are_refused_every_webhook_endpoint_before_any_lookup():
    endpoint = WebhookEndpointFactory()
    client = token_client(api_customer().customer.user)
    for url in (ENDPOINTS, f"{ENDPOINTS}{endpoint.pk}/", f"{ENDPOINTS}987654/", DELIVERIES):
        response = client.get(url)
        assert response.status_code == 403 and response.json()["error"]["message"] == "This action is for staff only."
