"""The ASGI application routes HTTP to Django and refuses WebSockets it has no consumer for."""

from channels.testing import HttpCommunicator, WebsocketCommunicator

from billing_project.asgi import application


async def test_http_goes_through_django():
    # A page that needs no database: Django's request threads keep their connections open for
    # CONN_MAX_AGE, which would outlive the test database.
    communicator = HttpCommunicator(application, "GET", "/admin/login/", headers=[(b"host", b"testserver")])
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 200
    assert b'id="login-form"' in response["body"]


async def test_websocket_on_an_unknown_path_is_refused_at_handshake():
    ws = WebsocketCommunicator(application, "/ws/nothing-here/", headers=[(b"origin", b"http://testserver")])
    accepted, _ = await ws.connect(timeout=5)
    assert not accepted


async def test_websocket_without_origin_is_refused_at_handshake():
    ws = WebsocketCommunicator(application, "/ws/payments/")
    accepted, _ = await ws.connect(timeout=5)
    assert not accepted
