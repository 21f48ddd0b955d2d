"""What payment_broadcast sends, to whom, when, and what happens when the channel layer is down."""

import json
import logging

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connections, transaction

from billing_project.tests.redis_support import HeldRedis, point_redis_at_closed_port, redis_channel_layers
from core.audit import Actor
from core.memo import _MEMOS
from core.resilience import channel_layer_breaker
from modules.live_layer import PipelinedPubSubChannelLayer
from modules.topics_sender import live_sender
from payments.live.broadcast import (
    EVENT_TYPE,
    LAYER_MESSAGE_TYPE,
    STAFF_GROUP,
    customer_group,
    payment_broadcast,
    payment_event_data,
)
from payments.models import Payment, PaymentMethod, PaymentStatus, PaymentStatusChange
from payments.providers.manual.services import payment_record_manual
from payments.services import (
    LineSpec,
    invoice_create,
    invoice_finalize,
    payment_transition,
)
from payments.tests.factories import PaymentFactory
from subscriptions.tests.factories import CustomerFactory

pytestmark = pytest.mark.usefixtures("in_memory_layer")

@pytest.mark.django_db(transaction=True)
async def test_broadcast_sends_one_payload_to_the_customer_group_and_the_staff_group():
    layer = get_channel_layer()
    payment = await database_sync_to_async(PaymentFactory)(status=PaymentStatus.PROCESSING)
    await layer.group_add(customer_group(payment.customer_id), "customer-channel")
    await layer.group_add(customer_group(payment.customer_id + 1), "other-customer-channel")
    await layer.group_add(STAFF_GROUP, "staff-channel")

    await database_sync_to_async(payment_broadcast)(payment_id=payment.pk, previous_status="pending")

    to_customer = await layer.receive("customer-channel")
    to_staff = await layer.receive("staff-channel")
    # The same payload; each copy names the group it was sent to (for each process's hub).
    assert (to_customer.pop("group"), to_staff.pop("group")) == (customer_group(payment.customer_id), STAFF_GROUP)
    assert to_customer == to_staff
    assert to_customer["type"] == LAYER_MESSAGE_TYPE
    assert to_customer["match"] == {"customer": payment.customer_id, "invoice": None, "status": "processing",
                                    "method": "stripe"}
    payload = json.loads(to_customer["text"])
    fresh = await database_sync_to_async(Payment.objects.select_related("invoice").get)(pk=payment.pk)
    assert payload == {"type": EVENT_TYPE, "data": payment_event_data(fresh), "previous_status": "pending"}
    assert "other-customer-channel" not in layer.channels
    await database_sync_to_async(connections.close_all)()


@pytest.mark.django_db
def test_payment_event_data_is_the_public_shape_of_a_payment():
    customer = CustomerFactory()
    invoice = invoice_create(customer=customer, lines=[LineSpec(kind="adjustment", description="Setup",
                                                                unit_amount=1500)])
    invoice = invoice_finalize(invoice=invoice, actor=Actor.system("test"))
    payment = payment_record_manual(customer=customer, amount=1500, method=PaymentMethod.CHECK, invoice=invoice,
                                    actor=Actor.system("test"))
    data = payment_event_data(Payment.objects.select_related("invoice").get(pk=payment.pk))
    assert data == {
        "id": payment.pk, "customer_id": customer.pk, "invoice_id": invoice.pk, "invoice_number": invoice.number,
        "amount": 1500, "amount_refunded": 0, "currency": "USD", "method": "check", "status": "succeeded",
        "status_label": "Succeeded", "failure_code": "", "failure_reason": "",
        "created_at": payment.created_at.isoformat(), "updated_at": payment.updated_at.isoformat(),
        "succeeded_at": payment.succeeded_at.isoformat(),
    }


@pytest.mark.django_db
def test_transition_schedules_its_broadcast_for_commit(django_capture_on_commit_callbacks):
    payment = PaymentFactory()
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        payment_transition(payment=payment, to_status=PaymentStatus.PROCESSING, actor=Actor.system("test"))
    assert [(c.func, c.keywords) for c in callbacks] == [
        (payment_broadcast, {"payment_id": payment.pk, "previous_status": "pending"}),
    ]


@pytest.mark.django_db
def test_manual_payment_is_announced_once_as_it_is_recorded(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        payment = payment_record_manual(customer=CustomerFactory(), amount=100, method=PaymentMethod.CASH,
                                        actor=Actor.system("test"))
    assert [c.keywords for c in callbacks] == [{"payment_id": payment.pk, "previous_status": "pending"}]


@pytest.mark.django_db(transaction=True)
def test_payments_are_saved_and_the_outage_logged_once_when_redis_is_down(settings, caplog, monkeypatch):
    """The events go through the process's live sender: recording a payment only queues its event, and the
    sender's thread meets the outage (one ERROR, the breaker open, the rest dropped without trying)."""
    # The memos (warm for every test) ask the cache for their version once a second: on a starved machine
    # the five payments outlast that, and the cache (at the same closed port) would log its own outage.
    for memo in _MEMOS:
        monkeypatch.setattr(memo, "check_interval", 3600.0)
    point_redis_at_closed_port(settings)
    settings.REDIS_RETRY_SECONDS = 3600
    customer = CustomerFactory()
    sent_before = live_sender().counts.sent

    with caplog.at_level(logging.INFO):
        payments = [payment_record_manual(customer=customer, amount=2500, method=PaymentMethod.BANK_TRANSFER,
                                          actor=Actor.system("test"), reference=f"wire {n}") for n in range(5)]
        assert live_sender().flush(timeout=10)

    for payment in payments:
        saved = Payment.objects.get(pk=payment.pk)
        assert saved.status == PaymentStatus.SUCCEEDED
        assert PaymentStatusChange.objects.filter(payment=saved, to_status=PaymentStatus.SUCCEEDED).exists()
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "core.resilience"
    assert "Redis channel layer at redis://127.0.0.1:" in record.getMessage()
    assert "live broadcasts are dropped" in record.getMessage()
    assert "ConnectionError" in record.getMessage()
    assert channel_layer_breaker().is_open
    assert live_sender().counts.sent == sent_before


@pytest.mark.django_db(transaction=True)
def test_recording_a_payment_never_waits_for_the_channel_layer(settings, monkeypatch):
    """A Redis that stopped answering holds the sender's thread, never the request: the payment is saved
    and its event queued, and the event goes out once Redis answers again."""
    published = []
    group_send_many = PipelinedPubSubChannelLayer.group_send_many

    def recorded(layer, sends):
        group_send_many(layer, sends)
        published.extend(sends)

    monkeypatch.setattr(PipelinedPubSubChannelLayer, "group_send_many", recorded)
    customer = CustomerFactory()

    with HeldRedis() as stuck_redis:
        settings.CHANNEL_LAYERS = redis_channel_layers(address=stuck_redis.url)
        payment = payment_record_manual(customer=customer, amount=700, method=PaymentMethod.CASH,
                                        actor=Actor.system("test"))

        assert stuck_redis.started.wait(5) and not published  # the request returned while the send is held
        assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
        stuck_redis.release()
        assert live_sender().flush(timeout=10)
    assert [group for group, _ in published] == [customer_group(customer.pk), STAFF_GROUP]
    assert all(message["group"] == group for group, message in published)
    assert json.loads(published[0][1]["text"])["data"]["id"] == payment.pk
