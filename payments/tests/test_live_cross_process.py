"""Two server processes sharing the Redis channel layer, under uvicorn as the Procfile runs it and under
daphne: a payment (and a change on every other topic) committed in a third process (this test, through the
real services) reaches clients connected to either server."""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.db import connections, transaction
from rest_framework.authtoken.models import Token
from websockets.asyncio.client import connect

from billing_project.tests.redis_support import closed_port, redis_channel_layers, redis_server_environment
from billing_project.tests.server_support import database_url_of_the_tests, port_listening
from core.audit import Actor
from credits.services import credit_grant
from payments.models import PaymentStatus
from payments.services import LineSpec, invoice_create, payment_lock, payment_transition
from payments.tests.factories import PaymentFactory
from subscriptions.models import Customer
from subscriptions.services import subscription_cancel
from subscriptions.tests.factories import CustomerFactory, StaffUserFactory, SubscriptionFactory
from usage.models import Meter
from usage.services import usage_event_record
from usage.tests.factories import MeterFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WAIT = 10






@pytest.fixture
def redis_layer(settings):
    """This process publishes through Redis as the servers do (settings with REDIS_URL set)."""
    settings.CHANNEL_LAYERS = redis_channel_layers()


SERVERS = {
    # The Procfile's websocket command, one process per port.
    "uvicorn": lambda port: [sys.executable, "-m", "uvicorn", "billing_project.asgi:application", "--host", "127.0.0.1",
                             "--port", str(port), "--loop", "uvloop", "--ws", "websockets-sansio",
                             "--ws-per-message-deflate", "false", "--lifespan", "off"],
    "daphne": lambda port: [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                            "billing_project.asgi:application"],
}


@pytest.fixture(params=sorted(SERVERS))
def two_servers(request, tmp_path: Path):
    # Ports the system just found free, not fixed ones: other pytest workers start servers too.
    ports = (closed_port(), closed_port())
    for port in ports:
        assert not port_listening(port), f"port {port} is taken"
    env = {**os.environ, "DATABASE_URL": database_url_of_the_tests(), **redis_server_environment(),
           "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "billing_project.settings"}
    logs = [tmp_path / f"{request.param}-{port}.log" for port in ports]
    processes = [
        subprocess.Popen(SERVERS[request.param](port), cwd=django_settings.BASE_DIR, env=env, stdout=log.open("w"),
                         stderr=subprocess.STDOUT)
        for port, log in zip(ports, logs, strict=True)
    ]
    try:
        deadline = time.monotonic() + 90  # starting Django takes tens of seconds on a loaded machine
        while not all(port_listening(port) for port in ports):
            assert all(p.poll() is None for p in processes), "\n".join(log.read_text() for log in logs)
            assert time.monotonic() < deadline, f"{request.param} did not start"
            time.sleep(0.1)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


async def _client(port: int, token: str):
    ws = await connect(f"ws://127.0.0.1:{port}/ws/payments/", origin=f"http://127.0.0.1:{port}",
                       subprotocols=["token", token], proxy=None, open_timeout=WAIT)
    assert ws.subprotocol == "token"
    await ws.send(json.dumps({"action": "subscribe", "topic": "payments"}))
    snapshot = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert snapshot["type"] == "snapshot"
    return ws, snapshot


def _move(payment_id: int, to_status: str) -> None:
    with transaction.atomic():
        payment = payment_lock(payment_id=payment_id)
        payment_transition(payment=payment, to_status=to_status, actor=Actor.system("cross-process-test"))


async def test_change_committed_in_one_process_reaches_clients_of_two_servers(two_servers, redis_layer):
    def world():
        customer = CustomerFactory()
        payment = PaymentFactory(customer=customer)
        return (payment.pk, Token.objects.create(user=customer.user).key,
                Token.objects.create(user=StaffUserFactory()).key)

    payment_id, customer_token, staff_token = await database_sync_to_async(world)()
    customer_ws, customer_snapshot = await _client(two_servers[0], customer_token)
    staff_ws, staff_snapshot = await _client(two_servers[1], staff_token)
    assert [item["id"] for item in customer_snapshot["items"]] == [payment_id]
    assert staff_snapshot["total"] == 1
    try:
        await database_sync_to_async(_move)(payment_id, PaymentStatus.PROCESSING)
        for ws in (customer_ws, staff_ws):
            event = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert event["type"] == "payment.updated"
            assert event["previous_status"] == "pending"
            assert (event["data"]["id"], event["data"]["status"]) == (payment_id, "processing")
    finally:
        await customer_ws.close()
        await staff_ws.close()
        await database_sync_to_async(connections.close_all)()


async def _topics_client(port: int, token: str, topics: list[str]):
    ws = await connect(f"ws://127.0.0.1:{port}/ws/", origin=f"http://127.0.0.1:{port}",
                       subprotocols=["token", token], proxy=None, open_timeout=WAIT)
    for topic in topics:
        await ws.send(json.dumps({"action": "subscribe", "topic": topic}))
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert (snapshot["type"], snapshot["topic"]) == ("snapshot", topic)
    return ws


def _every_topic_changes(customer_id: int, meter_id: int) -> None:
    customer = Customer.objects.get(pk=customer_id)
    invoice_create(customer=customer, lines=[LineSpec(kind="adjustment", description="x", quantity=1,
                                                      unit_amount=100)])
    credit_grant(customer=customer, amount=5, source="promotion", actor=Actor.system("cross-process-test"))
    usage_event_record(customer=customer, meter=Meter.objects.get(pk=meter_id), idempotency_key="cross-1")
    subscription_cancel(subscription=customer.subscriptions.get(), actor=Actor.system("cross-process-test"),
                        at_period_end=True)


async def test_every_topic_reaches_its_subscribers_on_both_servers_after_commit(two_servers, redis_layer):
    def world():
        subscription = SubscriptionFactory()
        return (subscription.customer_id, MeterFactory(code="calls").pk,
                Token.objects.create(user=subscription.customer.user).key,
                Token.objects.create(user=StaffUserFactory()).key)

    customer_id, meter_id, customer_token, staff_token = await database_sync_to_async(world)()
    topics = ["invoices", "credits", "usage", "subscriptions"]
    customer_ws = await _topics_client(two_servers[0], customer_token, topics)
    staff_ws = await _topics_client(two_servers[1], staff_token, topics)
    try:
        await database_sync_to_async(_every_topic_changes)(customer_id, meter_id)
        for ws in (customer_ws, staff_ws):
            events = [json.loads(await asyncio.wait_for(ws.recv(), WAIT)) for _ in topics]
            assert sorted((e["topic"], e["type"]) for e in events) == [
                ("credits", "created"), ("invoices", "created"), ("subscriptions", "updated"), ("usage", "updated")]
            assert {e["data"]["customer_id"] for e in events} == {customer_id}
    finally:
        await customer_ws.close()
        await staff_ws.close()
        await database_sync_to_async(connections.close_all)()
