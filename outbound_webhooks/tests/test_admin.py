"""The back office: staff register endpoints through the services' checks, read the delivery log and
redeliver behind its own permission; viewers do not see signing secrets."""

import pytest

from billing_project.tests.admin_helpers import changelist_url, messages_of, post_action, staff_user
from core.tests.jobs_support import jobs_queued
from outbound_webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from outbound_webhooks.services import WEBHOOK_DELIVER_TASK, webhook_event_emit
from outbound_webhooks.tests.factories import WebhookEndpointFactory

ADD = "/admin/outbound_webhooks/webhookendpoint/add/"


def _form(**fields) -> dict:
    return {"url": "https://crm.example.com/hooks", "description": "CRM", "event_types": ["invoice.paid"],
            "secret": "", "enabled": "on", **fields}


@pytest.mark.django_db
def test_staff_register_an_endpoint_and_a_secret_is_generated(client):
    client.force_login(staff_user("outbound_webhooks.add_webhookendpoint", "outbound_webhooks.change_webhookendpoint",
                                  "outbound_webhooks.view_webhookendpoint"))
    response = client.post(ADD, _form())
    assert response.status_code == 302, response.content[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and endpoint.event_types == ["invoice.paid"]
    page = client.get(f"/admin/outbound_webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint.secret.encode() in page.content


@pytest.mark.django_db
def test_a_private_address_is_refused_on_the_form(client, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    client.force_login(staff_user("outbound_webhooks.add_webhookendpoint"))
    response = client.post(ADD, _form(url="http://192.168.1.10/hooks"))
    assert response.status_code == 200 and b"is not a public address" in response.content
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_viewers_see_endpoints_but_not_their_secrets(client):
    endpoint = WebhookEndpointFactory()
    client.force_login(staff_user("outbound_webhooks.view_webhookendpoint"))
    page = client.get(f"/admin/outbound_webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and endpoint.url.encode() in page.content
    assert endpoint.secret.encode() not in page.content


@pytest.mark.django_db
def test_the_delivery_log_offers_redeliver_only_with_its_permission(client):
    WebhookEndpointFactory()
    webhook_event_emit(event_type="invoice.paid", object_type="invoice", object_id=3, data={})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
    client.force_login(staff_user("outbound_webhooks.view_webhookdelivery", username="viewer"))
    page = client.get(changelist_url(WebhookDelivery))
    assert page.status_code == 200 and b"invoice.paid" in page.content and b'value="redeliver"' not in page.content
    client.force_login(staff_user("outbound_webhooks.view_webhookdelivery",
                                  "outbound_webhooks.redeliver_webhookdelivery", username="operator"))
    response = post_action(client, WebhookDelivery, "redeliver", [delivery])
    assert messages_of(response) == ["1 deliveries will be sent again."]
    assert {"delivery_id": delivery.pk, "manual": True} in [j.args for j in jobs_queued(task_name=WEBHOOK_DELIVER_TASK)]
