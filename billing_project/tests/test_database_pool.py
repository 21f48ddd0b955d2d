"""Database connections under daphne are bounded by the pool: a burst of concurrent API requests all
succeed (they wait for a connection) while the server never holds more than DATABASE_POOL_MAX_SIZE
connections, counted by PostgreSQL itself."""

import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from billing_project.tests.api_support import api_customer
from billing_project.tests.redis_support import closed_port
from billing_project.tests.server_support import database_url_of_the_tests, port_listening

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

POOL_MAX_SIZE = 4
REQUESTS = 200






@pytest.fixture
def daphne_server(tmp_path: Path):
    """daphne on a free loopback port against the test database; its connections carry their own
    application_name (libpq's PGAPPNAME) so PostgreSQL can count them."""
    port = closed_port()
    app_name = f"pool-test-{secrets.token_hex(4)}"
    env = {**os.environ, "DATABASE_URL": database_url_of_the_tests(), "DATABASE_POOL_MAX_SIZE": str(POOL_MAX_SIZE),
           "DATABASE_POOL_TIMEOUT": "120", "PGAPPNAME": app_name, "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "billing_project.settings"}
    env.pop("REDIS_URL", None)
    log = tmp_path / "daphne.log"
    process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                "billing_project.asgi:application"],
                               cwd=django_settings.BASE_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not port_listening(port):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "daphne did not start"
            time.sleep(0.1)
        yield port, app_name, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class ConnectionCounter:
    """Polls pg_stat_activity from its own connection and keeps the highest count it saw."""

    def __init__(self, app_name: str):
        db = connection.settings_dict
        self.conn = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432,
                                    user=db["USER"] or "postgres", password=db["PASSWORD"] or None,
                                    dbname=db["NAME"], autocommit=True)
        self.app_name = app_name
        self.highest = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll)

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND application_name = %s", [self.app_name]).fetchone()[0]

    def _poll(self):
        while not self.stop.is_set():
            self.highest = max(self.highest, self.count())
            self.stop.wait(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_200_concurrent_api_requests_all_succeed_on_at_most_the_pool_size_of_connections(daphne_server):
    port, app_name, log = daphne_server
    caller = api_customer()
    token = caller.client._credentials["HTTP_AUTHORIZATION"]
    barrier = threading.Barrier(REQUESTS)

    def one_request(_):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/invoices/",
                                         headers={"Authorization": token})
        barrier.wait(timeout=60)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=180) as response:
            return response.status

    with ConnectionCounter(app_name) as counter:
        with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
            statuses = list(pool.map(one_request, range(REQUESTS)))
        after = counter.count()

    assert statuses == [200] * REQUESTS, log.read_text()
    assert 1 <= counter.highest <= POOL_MAX_SIZE
    assert after <= POOL_MAX_SIZE
    counter.conn.close()
