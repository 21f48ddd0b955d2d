"""Deliveries are signed, logged, retried on a schedule spanning the retry window, never sent from inside a
transaction; an endpoint failing for the whole window is disabled and staff are told."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.db import connection
from django.utils import timezone

from core.exceptions import InvalidOperation
from core.tests.jobs_support import jobs_queued, jobs_run_queued
from outbound_webhooks import services
from outbound_webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from outbound_webhooks.network import webhook_post
from outbound_webhooks.services import (
    WEBHOOK_DELIVER_TASK,
    WEBHOOK_ENDPOINT_DISABLED_EMAIL_TASK,
    webhook_delivery_attempt,
    webhook_delivery_redeliver,
    webhook_event_emit,
)
from outbound_webhooks.services.deliveries import webhook_retry_delay
from outbound_webhooks.tests.factories import WebhookEndpointFactory
from outbound_webhooks.tests.receiver import webhook_receiver


def verify(*, secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/webhooks-outbound.md shows it."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - int(parts["t"])) <= tolerance and hmac.compare_digest(expected, parts["v1"])


def _delivery(endpoint) -> WebhookDelivery:
    webhook_event_emit(event_type="invoice.finalized", object_type="invoice", object_id=42,
                       data={"id": 42, "total": 999, "currency": "USD"})
    return WebhookDelivery.objects.get(endpoint=endpoint)


@pytest.mark.django_db
def test_a_delivery_is_posted_signed_with_its_event_id_and_sequence_and_logged():
    with webhook_receiver() as receiver:
        endpoint = WebhookEndpointFactory(url=receiver.url)
        delivery = webhook_delivery_attempt(delivery_id=_delivery(endpoint).pk)
    [request] = receiver.received
    assert verify(secret=endpoint.secret, header=request.headers["Billing-Signature"], body=request.body)
    assert not verify(secret="whsec_other", header=request.headers["Billing-Signature"], body=request.body)
    payload = json.loads(request.body)
    assert payload["type"] == "invoice.finalized" and payload["id"] == request.headers["Billing-Event-Id"]
    assert payload["object"] == {"type": "invoice", "id": 42, "sequence": 1}
    assert payload["data"] == {"id": 42, "total": 999, "currency": "USD"}
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == (DeliveryStatus.SUCCEEDED, 1, 200)
    [attempt] = WebhookAttempt.objects.all()
    assert (attempt.succeeded, attempt.response_code, attempt.response_excerpt) == (True, 200, "ok")


@pytest.mark.django_db
def test_a_refused_delivery_is_logged_with_the_answer_and_scheduled_again_with_backoff():
    with webhook_receiver() as receiver:
        receiver.status, receiver.answer = 503, b"maintenance until noon"
        endpoint = WebhookEndpointFactory(url=receiver.url)
        before = timezone.now()
        delivery = webhook_delivery_attempt(delivery_id=_delivery(endpoint).pk)
    assert (delivery.status, delivery.last_response_code, delivery.last_error) == (DeliveryStatus.PENDING, 503,
                                                                                    "HTTP 503")
    assert WebhookAttempt.objects.get().response_excerpt == "maintenance until noon"
    [retry] = [j for j in jobs_queued(task_name=WEBHOOK_DELIVER_TASK) if j.scheduled_at is not None]
    assert retry.args == {"delivery_id": delivery.pk}
    assert before + timedelta(seconds=30) <= retry.scheduled_at <= timezone.now() + timedelta(seconds=30)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and endpoint.enabled


def test_the_backoff_doubles_up_to_its_cap_and_retries_span_at_least_three_days(settings):
    delays = [webhook_retry_delay(attempts=n) for n in range(1, 40)]
    assert delays[:3] == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    assert max(delays) == timedelta(hours=6)
    assert timedelta(days=3) <= settings.OUTBOUND_WEBHOOKS_RETRY_WINDOW


@pytest.mark.django_db
def test_the_last_retry_falls_on_the_end_of_the_window_and_a_failure_after_it_gives_up():
    endpoint = WebhookEndpointFactory(url="http://127.0.0.1:9/closed")  # nothing listens on the discard port
    delivery = _delivery(endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(retry_until=timezone.now() + timedelta(seconds=5))
    delivery = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at == delivery.retry_until
    assert delivery.last_response_code is None and "Connection" in delivery.last_error
    WebhookDelivery.objects.filter(pk=delivery.pk).update(retry_until=timezone.now())
    delivery = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.FAILED, 2, None)


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_the_receiver_is_called(monkeypatch):
    seen = []

    def watched_post(**kwargs):
        seen.append(connection.in_atomic_block)
        return webhook_post(**kwargs)

    monkeypatch.setattr(services.deliveries, "webhook_post", watched_post)
    with webhook_receiver() as receiver:
        endpoint = WebhookEndpointFactory(url=receiver.url)
        assert jobs_run_queued(task_name=WEBHOOK_DELIVER_TASK) == 0
        _delivery(endpoint)  # committed on its own (autocommit), as the change that causes it would be
        assert jobs_run_queued(task_name=WEBHOOK_DELIVER_TASK) == 1
    assert seen == [False] and len(receiver.received) == 1


@pytest.mark.django_db
def test_private_and_loopback_addresses_are_refused_unless_allowed(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    with webhook_receiver() as receiver:
        endpoint = WebhookEndpointFactory(url=receiver.url.replace("127.0.0.1", "localhost"))
        delivery = webhook_delivery_attempt(delivery_id=_delivery(endpoint).pk)
    assert receiver.received == []
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_error.startswith("refused: localhost resolves")


@pytest.mark.django_db
def test_an_endpoint_failing_for_three_days_is_disabled_and_staff_who_may_fix_it_are_emailed(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    endpoint = WebhookEndpointFactory(url="http://127.0.0.1:9/closed",
                                      failing_since=timezone.now() - timedelta(hours=72, minutes=1))
    admin = User.objects.create(username="root", email="root@example.com", is_staff=True, is_superuser=True)
    ops = User.objects.create(username="ops", email="ops@example.com", is_staff=True)
    ops.user_permissions.add(Permission.objects.get(codename="change_webhookendpoint"))
    User.objects.create(username="support", email="support@example.com", is_staff=True)  # may not: not told
    webhook_delivery_attempt(delivery_id=_delivery(endpoint).pk)
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_at is not None and "failed since" in endpoint.disabled_reason
    assert jobs_run_queued(task_name=WEBHOOK_ENDPOINT_DISABLED_EMAIL_TASK) == 1
    assert sorted(m.to[0] for m in mail.outbox) == [ops.email, admin.email]
    assert "Webhook endpoint disabled: http://127.0.0.1:9/closed" in mail.outbox[0].subject


@pytest.mark.django_db
def test_a_success_clears_the_failure_record_so_the_endpoint_is_not_disabled():
    with webhook_receiver() as receiver:
        endpoint = WebhookEndpointFactory(url=receiver.url, failing_since=timezone.now() - timedelta(hours=80))
        webhook_delivery_attempt(delivery_id=_delivery(endpoint).pk)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is None


@pytest.mark.django_db
def test_a_pending_delivery_to_a_disabled_endpoint_gives_up_without_calling_it():
    with webhook_receiver() as receiver:
        endpoint = WebhookEndpointFactory(url=receiver.url)
        delivery = _delivery(endpoint)
        endpoint.enabled = False
        endpoint.save()
        delivery = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert receiver.received == []
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.FAILED, "endpoint disabled")


@pytest.mark.django_db
def test_staff_redeliver_a_failed_delivery_and_the_attempt_is_logged_as_manual():
    with webhook_receiver() as receiver:
        endpoint = WebhookEndpointFactory(url=receiver.url)
        delivery = _delivery(endpoint)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
        jobs_run_queued(task_name=WEBHOOK_DELIVER_TASK)  # the original job finds it given up: sends nothing
        assert receiver.received == []
        webhook_delivery_redeliver(delivery=delivery)
        [job] = jobs_queued(task_name=WEBHOOK_DELIVER_TASK)
        assert job.args == {"delivery_id": delivery.pk, "manual": True}
        jobs_run_queued(task_name=WEBHOOK_DELIVER_TASK)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and len(receiver.received) == 1
    assert WebhookAttempt.objects.get().manual is True


@pytest.mark.django_db
def test_redelivering_to_a_disabled_endpoint_is_refused():
    endpoint = WebhookEndpointFactory()
    delivery = _delivery(endpoint)
    endpoint.enabled = False
    endpoint.save()
    with pytest.raises(InvalidOperation) as refused:
        webhook_delivery_redeliver(delivery=delivery)
    assert refused.value.code == "webhook_endpoint_disabled"


@pytest.mark.django_db
def test_a_queued_delivery_is_paused_while_the_module_is_off_and_sent_when_it_is_on_again():
    from core.audit import Actor
    from modules.services import module_disable, module_enable

    with webhook_receiver() as receiver:
        endpoint = WebhookEndpointFactory(url=receiver.url)
        queued = _delivery(endpoint)
        module_disable(code="outbound_webhooks", actor=Actor.system("test"))
        jobs_run_queued(task_name=WEBHOOK_DELIVER_TASK)  # the queued job runs while the module is off
        paused = WebhookDelivery.objects.get(pk=queued.pk)
        assert receiver.received == [] and not WebhookAttempt.objects.exists()
        assert (paused.status, paused.attempts, paused.next_attempt_at) == (DeliveryStatus.PENDING, 0, None)
        assert paused.paused_at is not None and not jobs_queued(task_name=WEBHOOK_DELIVER_TASK)

        module_enable(code="outbound_webhooks", actor=Actor.system("test"))
        assert [j.args for j in jobs_queued(task_name=WEBHOOK_DELIVER_TASK)] == [{"delivery_id": queued.pk}]
        jobs_run_queued(task_name=WEBHOOK_DELIVER_TASK)
    resumed = WebhookDelivery.objects.get(pk=queued.pk)
    assert len(receiver.received) == 1
    assert (resumed.status, resumed.attempts, resumed.paused_at) == (DeliveryStatus.SUCCEEDED, 1, None)


@pytest.mark.django_db
def test_switching_the_module_on_resumes_only_paused_deliveries():
    from core.audit import Actor
    from modules.services import module_disable, module_enable

    endpoint = WebhookEndpointFactory()
    queued = _delivery(endpoint)
    module_disable(code="outbound_webhooks", actor=Actor.system("test"))
    module_enable(code="outbound_webhooks", actor=Actor.system("test"))
    # Its first job never ran while the module was off, so it is still queued once, not twice.
    assert [j.args for j in jobs_queued(task_name=WEBHOOK_DELIVER_TASK)] == [{"delivery_id": queued.pk}]


@pytest.mark.django_db
def test_a_delivery_outcome_does_not_make_every_process_reload_the_subscriptions():
    from django.core.cache import cache

    from outbound_webhooks.models import ENDPOINT_SUBSCRIPTIONS_MEMO

    with webhook_receiver() as receiver:
        endpoint = WebhookEndpointFactory(url=receiver.url)
        delivery = _delivery(endpoint)
        version = cache.get(ENDPOINT_SUBSCRIPTIONS_MEMO.version_key)
        assert webhook_delivery_attempt(delivery_id=delivery.pk).status == DeliveryStatus.SUCCEEDED
    assert cache.get(ENDPOINT_SUBSCRIPTIONS_MEMO.version_key) == version
