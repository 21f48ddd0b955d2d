"""Every live topic over the multiplexing endpoint `/ws/`: per-topic authorization (a customer sees only
its own objects and needs `live_updates`; staff need the model's view permission; a disabled module's
topic is refused), snapshots `{"items", "total"}`, and created/updated events sent only after commit."""

from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction

from billing_project.asgi import application
from billing_project.tests.admin_helpers import staff_user
from core.audit import Actor
from credits.services import credit_grant
from modules.services import module_disable
from payments.services import LineSpec, invoice_create, invoice_finalize
from payments.tests.test_consumers import (  # noqa: F401 - the fixtures that share the test's connection
    ORIGIN,
    WAIT,
    channels_thread_uses_the_test_connection,
    close_consumer_connections,
    commits,
    connection_of_the_test,
    session_cookie,
)
from subscriptions.services import subscription_cancel
from subscriptions.tests.factories import PlanFactory, StaffUserFactory, SubscriptionFactory
from usage.services import usage_event_record
from usage.tests.factories import MeterFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_memory_layer")]

ACTOR = Actor.system("test")
TOPICS = ("payments", "invoices", "subscriptions", "credits", "usage")


def subscribed_customer(**plan_fields):
    plan = PlanFactory(**plan_fields)
    return SubscriptionFactory(plan=plan).customer


async def connect(user) -> WebsocketCommunicator:
    cookie = await database_sync_to_async(session_cookie)(user)
    ws = WebsocketCommunicator(application, "/ws/", headers=[
        ORIGIN, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())])
    accepted, _ = await ws.connect(timeout=WAIT)
    assert accepted
    return ws


async def ask(ws, topic: str, **params) -> dict:
    await ws.send_json_to({"action": "subscribe", "topic": topic, "params": params})
    return await ws.receive_json_from(timeout=WAIT)


@pytest.mark.parametrize("topic", TOPICS)
async def test_every_topic_answers_a_snapshot_of_the_customers_own_objects(topic):
    def world():
        alice, bob = subscribed_customer(), subscribed_customer()
        for customer in (alice, bob):
            credit_grant(customer=customer, amount=5, source="promotion", actor=ACTOR)
            invoice_create(customer=customer, lines=[LineSpec(kind="adjustment", description="x", quantity=1,
                                                              unit_amount=100)])
        return alice
    alice = await database_sync_to_async(world)()
    ws = await connect(alice.user)

    snapshot = await ask(ws, topic)

    assert snapshot["type"] == "snapshot" and snapshot["topic"] == topic
    assert set(snapshot) == {"type", "topic", "items", "total"}
    assert {item["customer_id"] for item in snapshot["items"]} <= {alice.pk}
    assert snapshot["total"] == len(snapshot["items"])
    if topic != "payments":
        assert snapshot["total"] >= 1
    await ws.disconnect()


@pytest.mark.parametrize("topic", ["invoices", "subscriptions", "credits", "usage"])
async def test_a_customer_whose_plan_lacks_live_updates_is_refused(topic):
    customer = await database_sync_to_async(subscribed_customer)(features=["api_access"])
    ws = await connect(customer.user)

    answer = await ask(ws, topic)

    assert answer == {"type": "error", "code": "topic_forbidden",
                      "message": f"Your plan does not include the live_updates feature ({topic})."}
    assert (await ask(ws, "payments"))["type"] == "snapshot"  # existing clients' topic stays open
    await ws.disconnect()


@pytest.mark.parametrize(("topic", "permission"), [
    ("payments", "payments.view_payment"), ("invoices", "payments.view_invoice"),
    ("subscriptions", "subscriptions.view_subscription"), ("credits", "credits.view_creditledgerentry"),
    ("usage", "usage.view_usageevent"),
])
async def test_staff_need_the_models_view_permission(topic, permission):
    allowed, other = await database_sync_to_async(lambda: (staff_user(permission, username="allowed"),
                                                           staff_user("auth.view_user", username="other")))()
    ws_allowed, ws_other = await connect(allowed), await connect(other)

    assert (await ask(ws_allowed, topic))["type"] == "snapshot"
    assert (await ask(ws_other, topic)) == {"type": "error", "code": "topic_forbidden",
                                            "message": f"You need the {permission} permission for {topic}."}
    await ws_allowed.disconnect()
    await ws_other.disconnect()


@pytest.mark.parametrize(("module", "topic"), [
    ("invoicing", "invoices"), ("invoicing", "payments"), ("credits", "credits"), ("usage", "usage"),
    ("live", "subscriptions"),
])
async def test_a_disabled_modules_topic_refuses_subscription(module, topic):
    staff = await database_sync_to_async(StaffUserFactory)()
    await database_sync_to_async(module_disable)(code=module, actor=ACTOR)
    ws = await connect(staff)

    answer = await ask(ws, topic)

    assert (answer["type"], answer["code"]) == ("error", "topic_disabled")
    assert "module is disabled" in answer["message"]
    await ws.disconnect()


async def test_a_customer_cannot_filter_by_another_customer():
    customer = await database_sync_to_async(subscribed_customer)()
    ws = await connect(customer.user)

    assert (await ask(ws, "invoices", customer=customer.pk + 1))["code"] == "bad_params"
    assert (await ask(ws, "invoices", status="lost"))["code"] == "bad_params"
    await ws.disconnect()


def _changes(alice, bob, meter) -> None:
    """One committed change on every topic for each customer."""
    for customer in (alice, bob):
        with transaction.atomic():
            invoice = invoice_create(customer=customer, lines=[LineSpec(kind="adjustment", description="x", quantity=1,
                                                                        unit_amount=100)])
            invoice_finalize(invoice=invoice, actor=ACTOR)
        credit_grant(customer=customer, amount=5, source="promotion", actor=ACTOR)
        usage_event_record(customer=customer, meter=meter, idempotency_key=f"k-{customer.pk}")
        subscription_cancel(subscription=customer.subscriptions.get(), actor=ACTOR, at_period_end=True)


async def _events(ws, count: int) -> list[dict]:
    return [await ws.receive_json_from(timeout=WAIT) for _ in range(count)]


@commits
async def test_events_after_commit_reach_the_owner_and_staff_only():
    def world():
        return subscribed_customer(), subscribed_customer(), StaffUserFactory(), MeterFactory(code="calls")
    alice, bob, staff, meter = await database_sync_to_async(world)()
    alice_ws, staff_ws = await connect(alice.user), await connect(staff)
    for ws in (alice_ws, staff_ws):
        for topic in ("invoices", "subscriptions", "credits", "usage"):
            assert (await ask(ws, topic))["type"] == "snapshot"

    await database_sync_to_async(_changes)(alice, bob, meter)

    # Per customer: invoice created + finalized, one ledger entry, one usage total, one subscription update.
    alice_events = await _events(alice_ws, 5)
    staff_events = await _events(staff_ws, 10)
    assert {e["data"]["customer_id"] for e in alice_events} == {alice.pk}
    assert {e["data"]["customer_id"] for e in staff_events} == {alice.pk, bob.pk}
    assert sorted((e["topic"], e["type"]) for e in alice_events) == [
        ("credits", "created"), ("invoices", "created"), ("invoices", "updated"), ("subscriptions", "updated"),
        ("usage", "updated")]
    assert await alice_ws.receive_nothing(timeout=0.2)
    usage = next(e for e in alice_events if e["topic"] == "usage")
    assert [(m["meter"], Decimal(m["value"])) for m in usage["data"]["meters"]] == [("calls", 1)]
    await alice_ws.disconnect()
    await staff_ws.disconnect()


@commits
async def test_a_rolled_back_change_sends_nothing_and_unsubscribing_stops_events():
    customer = await database_sync_to_async(subscribed_customer)()
    ws = await connect(customer.user)
    assert (await ask(ws, "credits"))["type"] == "snapshot"

    def rolled_back():
        with transaction.atomic():
            credit_grant(customer=customer, amount=5, source="promotion", actor=ACTOR)
            transaction.set_rollback(True)
    await database_sync_to_async(rolled_back)()
    assert await ws.receive_nothing(timeout=0.3)

    await ws.send_json_to({"action": "unsubscribe", "topic": "credits"})
    assert await ws.receive_json_from(timeout=WAIT) == {"type": "unsubscribed", "topic": "credits"}
    await database_sync_to_async(credit_grant)(customer=customer, amount=5, source="promotion", actor=ACTOR)
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_a_payment_event_from_a_process_of_the_previous_release_is_still_delivered():
    """During a rolling deploy, older processes send "payment.event" without a topic."""
    from channels.layers import get_channel_layer

    from payments.live.broadcast import STAFF_GROUP

    staff = await database_sync_to_async(StaffUserFactory)()
    ws = await connect(staff)
    assert (await ask(ws, "payments"))["type"] == "snapshot"

    await get_channel_layer().group_send(STAFF_GROUP, {
        "type": "payment.event", "text": '{"type": "payment.updated"}',
        "match": {"customer": 1, "invoice": None, "status": "pending", "method": "cash"}})

    assert await ws.receive_json_from(timeout=WAIT) == {"type": "payment.updated"}
    await ws.disconnect()


async def test_a_process_joins_each_group_once_whatever_the_number_of_its_connections():
    """The hub (payments.live.hub) receives each event once per process and writes it to every local
    subscriber, instead of one channel-layer copy per connection."""
    from channels.layers import get_channel_layer

    staff = await database_sync_to_async(StaffUserFactory)()
    connections_ = [await connect(staff) for _ in range(3)]
    for ws in connections_:
        assert (await ask(ws, "payments"))["type"] == "snapshot"

    assert len(get_channel_layer().groups["payments.staff"]) == 1
    for ws in connections_:
        await ws.disconnect()
    assert "payments.staff" not in get_channel_layer().groups


async def test_an_event_published_while_the_snapshot_is_read_arrives_after_the_snapshot(monkeypatch):
    """The hub writes events as they come; one that arrives between joining the group and sending the
    snapshot is held by the consumer and written right after its topic's snapshot."""
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from payments.live import consumers
    from payments.live.broadcast import STAFF_GROUP

    read_snapshot = consumers.topic_snapshot

    async def hub_has_run():
        for _ in range(20):
            await asyncio.sleep(0)

    def snapshot_with_a_change_meanwhile(*, topic, query):
        async_to_sync(get_channel_layer().group_send)(STAFF_GROUP, {
            "type": "live.event", "topic": "payments", "group": STAFF_GROUP, "text": '{"type": "payment.updated"}',
            "match": {"customer": 1, "invoice": None, "status": "failed", "method": "cash"}})
        async_to_sync(hub_has_run)()
        return read_snapshot(topic=topic, query=query)

    monkeypatch.setattr(consumers, "topic_snapshot", snapshot_with_a_change_meanwhile)
    staff = await database_sync_to_async(StaffUserFactory)()
    ws = await connect(staff)

    assert (await ask(ws, "payments"))["type"] == "snapshot"
    assert await ws.receive_json_from(timeout=WAIT) == {"type": "payment.updated"}
    await ws.disconnect()
