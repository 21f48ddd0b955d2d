"""The ASGI application routes HTTP to Django and refuses WebSockets it has no consumer for."""

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.db import connections

from billing_project.asgi import application


@pytest.mark.django_db(transaction=True)
async def test_http_goes_through_django():
    communicator = HttpCommunicator(application, "GET", "/healthz", headers=[(b"host", b"testserver")])
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 200
    assert json.loads(response["body"])["status"] == "ok"
    # The view ran on Channels' database thread; its connection must not outlive the test database.
    await database_sync_to_async(connections.close_all)()


async def test_websocket_on_an_unknown_path_is_refused_at_handshake():
    ws = WebsocketCommunicator(application, "/ws/nothing-here/", headers=[(b"origin", b"http://testserver")])
    accepted, _ = await ws.connect(timeout=5)
    assert not accepted


async def test_websocket_without_origin_is_refused_at_handshake():
    ws = WebsocketCommunicator(application, "/ws/payments/")
    accepted, _ = await ws.connect(timeout=5)
    assert not accepted
