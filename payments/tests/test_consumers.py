"""The payments WebSocket end to end through the ASGI application: origin check, session and token
auth, scoping, snapshot, events after commit, and the error answers of the protocol."""

import json
from dataclasses import dataclass

import channels.db
import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.test import Client
from rest_framework.authtoken.models import Token

from billing_project.asgi import application
from core.audit import Actor
from payments.live.broadcast import STAFF_GROUP, payment_event_message
from payments.live.consumers import CloseCode
from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.services import payment_lock, payment_refund, payment_transition
from payments.tests.factories import InvoiceFactory, PaymentFactory
from subscriptions.tests.factories import CustomerFactory, StaffUserFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_memory_layer")]
# A live event is sent when its transaction commits, so a test that waits for one commits for real (and the
# tables are emptied after it). The others run inside the test's transaction, rolled back after.
commits = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")
# Generous: the first database round trip of a test can be slow; nothing here asserts durations.
WAIT = 5


@pytest.fixture(autouse=True)
async def close_consumer_connections():
    """Consumers query from Channels' database thread; close its connection so the test database
    can be flushed and dropped."""
    yield
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
def connection_of_the_test(request, db, monkeypatch):
    """The connection holding the test's transaction, or None in a committing test. Taken here, in sync
    code: in async code Django hands out a different connection per task."""
    if request.node.get_closest_marker("django_db").kwargs.get("transaction"):
        return None
    # Channels closes connections around each call; inside the test's transaction that would close this one.
    monkeypatch.setattr(channels.db, "close_old_connections", lambda: None)
    return connections[DEFAULT_DB_ALIAS]


@pytest.fixture(autouse=True)
async def channels_thread_uses_the_test_connection(connection_of_the_test, close_consumer_connections):
    """Channels runs every query of the consumer (and the test's database_sync_to_async calls) in its one
    database thread. Outside a committing test that thread is handed the test's own connection, so it sees
    the rows the test made in its transaction and they roll back with it."""
    if connection_of_the_test is None:
        yield
        return
    connection_of_the_test.inc_thread_sharing()

    def adopt():
        connections[DEFAULT_DB_ALIAS] = connection_of_the_test

    def release():
        del connections[DEFAULT_DB_ALIAS]

    await database_sync_to_async(adopt)()
    yield
    await database_sync_to_async(release)()
    connection_of_the_test.dec_thread_sharing()


@dataclass
class World:
    alice: object  # customer A
    bob: object  # customer B
    staff: object
    alice_token: str
    bob_token: str
    staff_token: str


@pytest.fixture
def world() -> World:
    alice = CustomerFactory()
    bob = CustomerFactory()
    staff = StaffUserFactory()
    return World(alice=alice, bob=bob, staff=staff,
                 alice_token=Token.objects.create(user=alice.user).key,
                 bob_token=Token.objects.create(user=bob.user).key,
                 staff_token=Token.objects.create(user=staff).key)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def communicator(*, cookie: str | None = None, subprotocols: list[str] | None = None,
                 origin: tuple = ORIGIN) -> WebsocketCommunicator:
    headers = [origin] if origin else []
    if cookie:
        headers.append((b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/payments/", headers=headers, subprotocols=subprotocols)


async def connected(**kwargs) -> WebsocketCommunicator:
    ws = communicator(**kwargs)
    accepted, _ = await ws.connect(timeout=WAIT)
    assert accepted
    return ws


async def subscribe(ws: WebsocketCommunicator, **params) -> dict:
    await ws.send_json_to({"action": "subscribe", "topic": "payments", "params": params})
    snapshot = await ws.receive_json_from(timeout=WAIT)
    assert snapshot["type"] == "snapshot", snapshot
    return snapshot


async def closed_with(ws: WebsocketCommunicator) -> int:
    output = await ws.receive_output(timeout=WAIT)
    assert output["type"] == "websocket.close", output
    return output["code"]


def move(payment_id: int, to_status: str) -> None:
    with transaction.atomic():
        payment = payment_lock(payment_id=payment_id)
        payment_transition(payment=payment, to_status=to_status, actor=Actor.system("test"))


amove = database_sync_to_async(move)
create_payment = database_sync_to_async(PaymentFactory)


# ------------------------------------------------------------------------------------------- auth


async def test_staff_session_cookie_authenticates():
    staff = await database_sync_to_async(StaffUserFactory)()
    cookie = await database_sync_to_async(session_cookie)(staff)
    ws = await connected(cookie=cookie)
    assert (await subscribe(ws))["total"] == 0
    await ws.disconnect()


async def test_customer_session_cookie_authenticates(world):
    await create_payment(customer=world.alice)
    cookie = await database_sync_to_async(session_cookie)(world.alice.user)
    ws = await connected(cookie=cookie)
    assert (await subscribe(ws))["total"] == 1
    await ws.disconnect()


async def test_token_in_first_message_authenticates(world):
    ws = await connected()
    await ws.send_json_to({"action": "auth", "token": world.staff_token})
    assert await ws.receive_json_from(timeout=WAIT) == {"type": "authenticated", "role": "staff"}
    await subscribe(ws)
    await ws.send_json_to({"action": "auth", "token": world.staff_token})
    assert (await ws.receive_json_from(timeout=WAIT))["code"] == "already_authenticated"
    await ws.disconnect()


async def test_token_in_subprotocol_authenticates_and_only_token_is_echoed(world):
    ws = communicator(subprotocols=["token", world.alice_token])
    accepted, subprotocol = await ws.connect(timeout=WAIT)
    assert accepted
    assert subprotocol == "token"
    await subscribe(ws)
    await ws.disconnect()


async def test_token_in_subprotocol_wins_over_session_cookie(world):
    await create_payment(customer=world.bob)
    cookie = await database_sync_to_async(session_cookie)(world.staff)
    ws = await connected(cookie=cookie, subprotocols=["token", world.alice_token])
    # Alice's view, not staff's: Bob's payment is not counted.
    assert (await subscribe(ws))["total"] == 0
    await ws.disconnect()


async def test_bad_subprotocol_token_is_closed_unauthenticated(world):
    ws = communicator(subprotocols=["token", "not-a-token"])
    accepted, _ = await ws.connect(timeout=WAIT)
    assert accepted
    assert await closed_with(ws) == CloseCode.UNAUTHENTICATED
    await ws.disconnect()


async def test_bad_first_message_token_is_closed_unauthenticated(world):
    ws = await connected()
    await ws.send_json_to({"action": "auth", "token": "x" * 40})
    assert await closed_with(ws) == CloseCode.UNAUTHENTICATED
    await ws.disconnect()


async def test_token_of_inactive_user_is_refused(world):
    def deactivate():
        world.alice.user.is_active = False
        world.alice.user.save(update_fields=["is_active"])

    await database_sync_to_async(deactivate)()
    ws = communicator(subprotocols=["token", world.alice_token])
    await ws.connect(timeout=WAIT)
    assert await closed_with(ws) == CloseCode.UNAUTHENTICATED
    await ws.disconnect()


async def test_anonymous_subscribe_is_closed_unauthenticated():
    ws = await connected()
    await ws.send_json_to({"action": "subscribe", "topic": "payments"})
    assert await closed_with(ws) == CloseCode.UNAUTHENTICATED
    await ws.disconnect()


async def test_anonymous_connection_is_closed_when_it_does_not_authenticate_in_time(settings):
    settings.WEBSOCKET_AUTH_TIMEOUT = 0.05
    ws = await connected()
    assert await closed_with(ws) == CloseCode.UNAUTHENTICATED
    await ws.disconnect()


async def test_user_who_is_neither_customer_nor_staff_is_forbidden():
    def user_with_token():
        return Token.objects.create(user=UserFactory()).key

    ws = communicator(subprotocols=["token", await database_sync_to_async(user_with_token)()])
    await ws.connect(timeout=WAIT)
    assert await closed_with(ws) == CloseCode.FORBIDDEN
    await ws.disconnect()


async def test_staff_without_view_permission_and_no_customer_is_forbidden():
    def staff_without_permission():
        return Token.objects.create(user=UserFactory(is_staff=True)).key

    ws = await connected()
    await ws.send_json_to({"action": "auth", "token": await database_sync_to_async(staff_without_permission)()})
    assert await closed_with(ws) == CloseCode.FORBIDDEN
    await ws.disconnect()


async def test_foreign_origin_is_refused_at_handshake(world):
    ws = communicator(subprotocols=["token", world.staff_token], origin=(b"origin", b"https://evil.example"))
    accepted, _ = await ws.connect(timeout=WAIT)
    assert not accepted


# ------------------------------------------------------------------------------ snapshot and filters


async def test_snapshot_is_newest_first_bounded_and_counts_all_matches(world):
    ids = [(await create_payment(customer=world.alice)).pk for _ in range(5)]
    await create_payment(customer=world.bob)
    ws = await connected(subprotocols=["token", world.alice_token])
    snapshot = await subscribe(ws, limit=3)
    assert snapshot["total"] == 5
    assert [item["id"] for item in snapshot["items"]] == ids[::-1][:3]
    first = snapshot["items"][0]
    assert first["customer_id"] == world.alice.pk
    assert first["amount"] == 999
    assert first["currency"] == "USD"
    assert first["status"] == "pending"
    assert first["status_label"] == "Pending"
    await ws.disconnect()


async def test_snapshot_filters_by_status_method_invoice_and_customer(world):
    invoice = await database_sync_to_async(InvoiceFactory)(customer=world.alice)
    on_invoice = await create_payment(customer=world.alice, invoice=invoice)
    cash = await create_payment(customer=world.alice, method=PaymentMethod.CASH, status=PaymentStatus.SUCCEEDED)
    failed = await create_payment(customer=world.bob, status=PaymentStatus.FAILED)
    ws = await connected(subprotocols=["token", world.staff_token])

    def ids(snapshot):
        return {item["id"] for item in snapshot["items"]}

    assert ids(await subscribe(ws)) == {on_invoice.pk, cash.pk, failed.pk}
    assert ids(await subscribe(ws, status="failed")) == {failed.pk}
    assert ids(await subscribe(ws, status=["failed", "succeeded"])) == {failed.pk, cash.pk}
    assert ids(await subscribe(ws, method="cash")) == {cash.pk}
    assert ids(await subscribe(ws, invoice=invoice.pk)) == {on_invoice.pk}
    assert ids(await subscribe(ws, customer=world.bob.pk)) == {failed.pk}
    await ws.disconnect()


async def test_customer_snapshot_never_shows_another_customers_payment_even_by_invoice(world):
    bobs_invoice = await database_sync_to_async(InvoiceFactory)(customer=world.bob)
    await create_payment(customer=world.bob, invoice=bobs_invoice)
    ws = await connected(subprotocols=["token", world.alice_token])
    assert (await subscribe(ws, invoice=bobs_invoice.pk)) == {"type": "snapshot", "topic": "payments", "items": [],
                                                              "total": 0}
    await ws.disconnect()


# ------------------------------------------------------------------------------------------- events


@commits
async def test_event_after_commit_carries_payment_and_previous_status(world):
    payment = await create_payment(customer=world.alice)
    ws = await connected(subprotocols=["token", world.alice_token])
    await subscribe(ws)
    await amove(payment.pk, PaymentStatus.PROCESSING)
    event = await ws.receive_json_from(timeout=WAIT)
    assert event["type"] == "payment.updated"
    assert event["previous_status"] == "pending"
    assert event["data"]["id"] == payment.pk
    assert event["data"]["status"] == "processing"
    assert event["data"]["status_label"] == "Processing"
    await ws.disconnect()


@commits
async def test_rolled_back_change_broadcasts_nothing(world):
    payment = await create_payment(customer=world.alice)
    ws = await connected(subprotocols=["token", world.alice_token])
    await subscribe(ws)

    class Abort(Exception):
        pass

    def move_then_roll_back():
        with pytest.raises(Abort), transaction.atomic():
            locked = payment_lock(payment_id=payment.pk)
            payment_transition(payment=locked, to_status=PaymentStatus.FAILED, actor=Actor.system("test"))
            raise Abort

    await database_sync_to_async(move_then_roll_back)()
    assert await ws.receive_nothing(timeout=0.3)
    # The next event is the committed one, so the rolled-back change was never queued.
    await amove(payment.pk, PaymentStatus.SUCCEEDED)
    event = await ws.receive_json_from(timeout=WAIT)
    assert (event["previous_status"], event["data"]["status"]) == ("pending", "succeeded")
    assert await database_sync_to_async(lambda: Payment.objects.get(pk=payment.pk).status)() == "succeeded"
    await ws.disconnect()


@commits
async def test_customer_never_receives_another_customers_events_and_staff_receives_both(world):
    alices = await create_payment(customer=world.alice)
    bobs = await create_payment(customer=world.bob)
    alice = await connected(subprotocols=["token", world.alice_token])
    bob = await connected(subprotocols=["token", world.bob_token])
    staff = await connected(subprotocols=["token", world.staff_token])
    for ws in (alice, bob, staff):
        await subscribe(ws)

    await amove(bobs.pk, PaymentStatus.FAILED)
    await amove(alices.pk, PaymentStatus.SUCCEEDED)

    assert (await alice.receive_json_from(timeout=WAIT))["data"]["id"] == alices.pk
    assert (await bob.receive_json_from(timeout=WAIT))["data"]["id"] == bobs.pk
    staff_seen = [(await staff.receive_json_from(timeout=WAIT))["data"]["id"] for _ in range(2)]
    assert staff_seen == [bobs.pk, alices.pk]
    for ws in (alice, bob, staff):
        assert await ws.receive_nothing(timeout=0.2)
        await ws.disconnect()


@commits
async def test_events_are_filtered_per_connection(world):
    cash = await create_payment(customer=world.alice, method=PaymentMethod.CASH)
    card = await create_payment(customer=world.alice)
    ws = await connected(subprotocols=["token", world.staff_token])
    await subscribe(ws, method="cash", status=["succeeded"])
    await amove(card.pk, PaymentStatus.SUCCEEDED)
    await amove(cash.pk, PaymentStatus.PROCESSING)
    await amove(cash.pk, PaymentStatus.SUCCEEDED)
    event = await ws.receive_json_from(timeout=WAIT)
    assert (event["data"]["id"], event["previous_status"]) == (cash.pk, "processing")
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


@commits
async def test_refund_is_broadcast(world):
    payment = await create_payment(customer=world.alice, method=PaymentMethod.CASH, status=PaymentStatus.SUCCEEDED,
                                   amount=1000)
    ws = await connected(subprotocols=["token", world.alice_token])
    await subscribe(ws)

    def refund(amount):
        payment_refund(payment=payment, amount=amount, actor=Actor.system("test"))

    await database_sync_to_async(refund)(400)
    partial = await ws.receive_json_from(timeout=WAIT)
    assert partial["previous_status"] == "succeeded"
    assert (partial["data"]["status"], partial["data"]["amount_refunded"]) == ("partially_refunded", 400)
    # A second partial refund leaves the status alone but is still news.
    await database_sync_to_async(refund)(100)
    again = await ws.receive_json_from(timeout=WAIT)
    assert again["previous_status"] == "partially_refunded"
    assert (again["data"]["status"], again["data"]["amount_refunded"]) == ("partially_refunded", 500)
    await database_sync_to_async(refund)(500)
    full = await ws.receive_json_from(timeout=WAIT)
    assert (full["previous_status"], full["data"]["status"]) == ("partially_refunded", "refunded")
    await ws.disconnect()


@commits
async def test_unsubscribe_stops_events(world):
    payment = await create_payment(customer=world.alice)
    ws = await connected(subprotocols=["token", world.alice_token])
    await subscribe(ws)
    await ws.send_json_to({"action": "unsubscribe", "topic": "payments"})
    assert await ws.receive_json_from(timeout=WAIT) == {"type": "unsubscribed", "topic": "payments"}
    await amove(payment.pk, PaymentStatus.PROCESSING)
    assert await ws.receive_nothing(timeout=0.3)
    # Subscribing again resumes events.
    await subscribe(ws)
    await amove(payment.pk, PaymentStatus.SUCCEEDED)
    assert (await ws.receive_json_from(timeout=WAIT))["previous_status"] == "processing"
    await ws.disconnect()


async def test_event_delivery_reads_nothing_from_the_database(world):
    """The hot path matches the broadcast's own fields: an event about a payment the database has
    never held is delivered as broadcast, which it could not be if delivery looked the payment up."""
    ws = await connected(subprotocols=["token", world.staff_token])
    await subscribe(ws)
    ghost = Payment(pk=10**9, customer_id=world.alice.pk, amount=1, currency="USD", method=PaymentMethod.CASH,
                    provider="manual",
                    status=PaymentStatus.SUCCEEDED)
    message = payment_event_message(payment=ghost, previous_status="pending")
    await get_channel_layer().group_send(STAFF_GROUP, message)
    assert await ws.receive_from(timeout=WAIT) == message["text"]
    await ws.disconnect()


# ------------------------------------------------------------------------------------ bad messages


@pytest.mark.parametrize(("frame", "code"), [
    ("{not json", "malformed_json"),
    ("[1, 2]", "bad_message"),
    ('{"topic": "payments"}', "bad_message"),
    ('{"action": "dance"}', "unknown_action"),
    ('{"action": "subscribe", "topic": "ledgers"}', "unknown_topic"),
    ('{"action": "subscribe", "topic": "payments", "params": []}', "bad_params"),
    ('{"action": "subscribe", "topic": "payments", "params": {"status": "lost"}}', "bad_params"),
    ('{"action": "subscribe", "topic": "payments", "params": {"method": ["cash", 3]}}', "bad_params"),
    ('{"action": "subscribe", "topic": "payments", "params": {"invoice": "12"}}', "bad_params"),
    ('{"action": "subscribe", "topic": "payments", "params": {"limit": 1000}}', "bad_params"),
    ('{"action": "subscribe", "topic": "payments", "params": {"colour": "red"}}', "bad_params"),
    # What the database cannot store or Python cannot parse is refused before any query.
    ('{"action": "subscribe", "topic": "payments", "params": {"invoice": 99999999999999999999}}', "bad_params"),
    ('{"action": "auth", "token": "abc\\u0000def"}', "malformed_json"),
    ('{"action": "ping", "note": "\\ud800"}', "malformed_json"),
    ('{"action": "ping", "n": NaN}', "malformed_json"),
    ("[" * 100_000 + "]" * 100_000, "malformed_json"),
])
async def test_bad_messages_are_answered_with_an_error_and_the_connection_stays(world, frame, code):
    ws = await connected(subprotocols=["token", world.staff_token])
    await ws.send_to(text_data=frame)
    error = await ws.receive_json_from(timeout=WAIT)
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    await ws.send_json_to({"action": "ping"})
    assert await ws.receive_json_from(timeout=WAIT) == {"type": "pong"}
    await ws.disconnect()


async def test_binary_frame_is_answered_with_an_error(world):
    ws = await connected(subprotocols=["token", world.staff_token])
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await ws.receive_json_from(timeout=WAIT))["code"] == "bad_message"
    await ws.disconnect()


async def test_customer_filter_is_refused_to_customers(world):
    ws = await connected(subprotocols=["token", world.alice_token])
    await ws.send_json_to({"action": "subscribe", "topic": "payments", "params": {"customer": world.alice.pk}})
    assert (await ws.receive_json_from(timeout=WAIT))["code"] == "bad_params"
    await ws.disconnect()


async def test_ping_answers_pong_even_before_authentication():
    ws = await connected()
    await ws.send_to(text_data=json.dumps({"action": "ping"}))
    assert await ws.receive_json_from(timeout=WAIT) == {"type": "pong"}
    await ws.disconnect()
