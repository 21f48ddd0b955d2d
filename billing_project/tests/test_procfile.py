"""The Procfile as deployed: honcho starts web (gunicorn), websocket (uvicorn, two workers), worker and scheduler on
PostgreSQL and Redis with DEBUG off; the admin loads with its CSS, a client receives a live event, and
the job that event's change queued is run by the worker."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.db import connections, transaction
from rest_framework.authtoken.models import Token
from websockets.asyncio.client import connect

from billing_project.tests.redis_support import closed_port, redis_channel_layers, redis_server_environment
from billing_project.tests.server_support import database_url_of_the_tests, port_listening
from core.audit import Actor
from notifications.models import EmailLog, EmailStatus
from payments.models import PaymentStatus
from payments.services import payment_lock, payment_transition
from payments.tests.factories import PaymentFactory
from subscriptions.tests.factories import CustomerFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30


@pytest.fixture
def procfile(tmp_path, settings):
    """Every process of the Procfile, under honcho, with production settings but plain HTTP on loopback."""
    settings.CHANNEL_LAYERS = redis_channel_layers()
    ports = {"WEB_PORT": closed_port(), "WEBSOCKET_PORT": closed_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()},
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "DATABASE_URL": database_url_of_the_tests(), **redis_server_environment(), "DEBUG": "false",
           "SECRET_KEY": "procfile-test-" + "x" * 50, "ALLOWED_HOSTS": "127.0.0.1",
           "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend", "WEB_CONCURRENCY": "1",
           "WORKER_CONCURRENCY": "1", "LOG_LEVEL": "WARNING"}
    log = tmp_path / "honcho.log"
    honcho = subprocess.Popen([sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile")], cwd=ROOT,
                              env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT
        while not all(port_listening(port) for port in ports.values()):
            assert honcho.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the Procfile's servers did not start:\n{log.read_text()}"
            time.sleep(0.2)
        yield ports, log
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)  # honcho's own session: it and the processes it started
        try:
            honcho.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def _admin_with_its_css(web_port: int) -> None:
    status, _, page = _get(f"http://127.0.0.1:{web_port}/admin/login/")
    assert status == 200
    assert b'href="/static/admin/css/base.css"' in page
    status, content_type, css = _get(f"http://127.0.0.1:{web_port}/static/admin/css/base.css")
    assert status == 200 and content_type.startswith("text/css") and b"body" in css


def _pay(payment_id: int) -> None:
    with transaction.atomic():
        payment = payment_lock(payment_id=payment_id)
        payment_transition(payment=payment, to_status=PaymentStatus.SUCCEEDED, actor=Actor.system("procfile-test"))


async def _live_event_of_the_payment(ws_port: int, token: str, payment_id: int) -> dict:
    async with connect(f"ws://127.0.0.1:{ws_port}/ws/payments/", origin=f"http://127.0.0.1:{ws_port}",
                       subprotocols=["token", token], proxy=None, open_timeout=WAIT) as ws:
        await ws.send(json.dumps({"action": "subscribe", "topic": "payments"}))
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert [item["id"] for item in snapshot["items"]] == [payment_id]
        await database_sync_to_async(_pay)(payment_id)
        return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


def _receipt_sent_by_the_worker(payment_id: int, log: Path) -> EmailLog:
    deadline = time.monotonic() + 60
    while True:
        receipt = EmailLog.objects.filter(event_key=f"payment_succeeded:{payment_id}").first()
        if receipt is not None and receipt.status == EmailStatus.SENT:
            return receipt
        assert time.monotonic() < deadline, f"the worker never sent the receipt:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def test_the_procfile_serves_the_admin_with_css_live_events_and_runs_jobs(procfile):
    ports, log = procfile
    customer = CustomerFactory(email="ada@example.com")
    payment = PaymentFactory(customer=customer)
    token = Token.objects.create(user=customer.user).key

    _admin_with_its_css(ports["WEB_PORT"])
    event = asyncio.run(_live_event_of_the_payment(ports["WEBSOCKET_PORT"], token, payment.pk))
    assert (event["type"], event["data"]["id"], event["data"]["status"]) == ("payment.updated", payment.pk, "succeeded")
    receipt = _receipt_sent_by_the_worker(payment.pk, log)
    assert receipt.recipient == "ada@example.com" and receipt.kind == "payment_succeeded"
    connections.close_all()
