"""Redis down: every door still answers correctly, the cache falls back to local memory, the outage is
logged once per process, and /healthz reports it. The cache really is the Redis backend, pointed at a
loopback port that refuses connections."""

import logging
import subprocess
import time

import pytest
from django.core.cache import cache, caches

from billing_project.tests.admin_helpers import build_business, messages_of, post_action
from billing_project.tests.api_support import api_customer
from billing_project.tests.redis_support import closed_port, point_redis_at_closed_port, redis_caches
from billing_project.tests.threads import race
from core import resilience
from core.audit import Actor
from core.resilience import ResilientRedisCache
from credits.selectors import credit_balance_get
from credits.services import credit_grant
from modules.topics_sender import live_sender
from payments.models import Invoice, InvoiceStatus
from payments.providers.stripe.models import StripeEvent
from payments.tests.stripe_support import WEBHOOK_SECRET, deliver, stripe_event
from subscriptions.api.client import api_client_forget
from usage.models import UsageEvent
from usage.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

RESILIENCE_LOGGER = "core.resilience"


@pytest.fixture
def redis_down(settings, caplog):
    point_redis_at_closed_port(settings)
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    assert isinstance(caches["default"], ResilientRedisCache)
    caplog.set_level(logging.INFO, logger=RESILIENCE_LOGGER)
    return caplog


def outage_errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == RESILIENCE_LOGGER and r.levelno >= logging.ERROR]


def test_customer_api_reads_and_writes_answer_as_usual_and_the_outage_is_logged_once(redis_down):
    caller = api_customer(rate_limit_per_minute=100)
    credit_grant(customer=caller.customer, amount=100, source="purchase", actor=Actor.system("test"))
    MeterFactory(code="calls")

    listed = [caller.client.get("/api/v1/invoices/") for _ in range(10)]
    first = caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = caller.client.post("/api/v1/credits/debit/", {"amount": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    ingested = caller.client.post("/api/v1/usage/events/", {"meter": "calls", "idempotency_key": "u1"},
                                  format="json")

    assert {r.status_code for r in listed} == {200}
    assert listed[-1]["X-RateLimit-Remaining"] == "90"  # counted, in this process's memory
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert credit_balance_get(customer=caller.customer) == 90
    assert ingested.status_code == 201
    assert UsageEvent.objects.filter(customer=caller.customer, idempotency_key="u1").count() == 1
    [error] = outage_errors(redis_down)
    assert "Redis cache at redis://127.0.0.1:" in error.getMessage()
    assert "ConnectionError" in error.getMessage()
    assert caches["default"].breaker.is_open


def test_plan_limits_still_hold_while_redis_is_down(redis_down):
    caller = api_customer(rate_limit_per_minute=3)

    answers = [caller.client.get("/api/v1/invoices/") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1]["Retry-After"]) >= 1
    assert len(outage_errors(redis_down)) == 1


def test_a_plan_change_through_the_api_is_seen_at_once_while_redis_is_down(redis_down):
    caller = api_customer(rate_limit_per_minute=100, code="small")
    assert caller.client.get("/api/v1/invoices/")["X-RateLimit-Limit"] == "100"
    caller.plan.rate_limit_per_minute = 5
    caller.plan.save()
    # What the API's plan change does after saving it.
    api_client_forget(user_id=caller.customer.user_id)

    assert caller.client.get("/api/v1/invoices/")["X-RateLimit-Limit"] == "5"


def test_stripe_webhooks_answer_400_for_a_bad_signature_and_200_for_a_good_one(client, redis_down):
    event = stripe_event("customer.created", {"id": "cus_x", "object": "customer"})

    bad = [deliver(client, event, signature="t=1,v1=bad") for _ in range(3)]
    good = deliver(client, event)

    assert {r.status_code for r in bad} == {400}
    assert good.status_code == 200
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 1
    health = client.get("/healthz").json()
    assert health["modules"]["stripe"]["details"]["verification_failures_last_hour"] == 3  # counted in this process
    assert len(outage_errors(redis_down)) == 1


def test_healthz_stays_200_and_reports_redis_degraded(client, redis_down):
    responses = [client.get("/healthz") for _ in range(5)]

    assert {r.status_code for r in responses} == {200}
    body = responses[-1].json()
    platform, live = body["modules"]["platform"], body["modules"]["live"]
    assert body["status"] == "degraded"
    assert platform["status"] == "degraded" and platform["details"] == {"database": "postgresql", "cache": "redis"}
    assert "the Redis cache is unreachable" in platform["message"]
    assert live["status"] == "degraded" and "channel layer" in live["message"]
    assert len(outage_errors(redis_down)) == 1


def test_healthz_reports_the_cache_local_when_redis_is_not_configured(client):
    platform = client.get("/healthz").json()["modules"]["platform"]
    assert platform["status"] == "ok" and platform["details"]["cache"] == "local"


def test_admin_pages_answer(admin_client, redis_down):
    assert admin_client.get("/admin/").status_code == 200
    assert admin_client.get("/admin/dashboard/").status_code == 200
    assert admin_client.get("/admin/payments/payment/").status_code == 200


def test_an_admin_action_whose_broadcast_fails_still_succeeds_and_keeps_its_work(
        admin_client, redis_down, django_capture_on_commit_callbacks):
    business = build_business(4)
    invoice = Invoice.objects.filter(pk__in=[i.pk for i in business.invoices], status=InvoiceStatus.OPEN,
                                     amount_paid=0, amount_due__gt=0).order_by("pk").first()

    with django_capture_on_commit_callbacks(execute=True) as broadcasts:
        response = post_action(admin_client, Invoice, "record_manual_payment", [invoice], apply=True,
                               method="check", amount="", reference="CHK-1",
                               token="0d8b3f0e-1c55-4a8e-9a57-2b1f9e3c7d10")

    assert response.status_code == 200
    assert messages_of(response) == ["Recorded a payment on 1 invoice(s)."]
    assert broadcasts  # the payment's broadcast ran, after the commit, and failed
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert live_sender().flush(timeout=10)  # the broadcast is sent (and fails) on the sender's thread
    [error] = [e for e in outage_errors(redis_down) if "Redis channel layer" in e.getMessage()]
    assert "live broadcasts are dropped" in error.getMessage()


def test_while_open_the_breaker_skips_redis_until_a_probe_is_due(settings, redis_down):
    settings.REDIS_RETRY_SECONDS = 3600
    backend = caches["default"]
    cache.set("k", 1)
    assert backend.breaker.is_open
    probes_before = backend.breaker.next_probe_at

    for _ in range(100):
        cache.incr("k")

    assert cache.get("k") == 101
    # No call went to Redis (each failure would have pushed the next probe later).
    assert backend.breaker.next_probe_at == probes_before


def test_threads_share_one_breaker_and_one_fallback_so_the_outage_is_logged_once(redis_down):
    cache.set("shared", "from the main thread")
    main_backend = caches["default"]

    def reader():
        backend = caches["default"]
        values = {cache.get("shared") for _ in range(20)}
        return backend is main_backend, backend.breaker is main_backend.breaker, values

    outcome = race([reader] * 8)

    assert not outcome.errors
    # Django builds a cache backend per thread; the breaker and the fallback are per process.
    assert outcome.results == [(False, True, {"from the main thread"})] * 8
    assert len(outage_errors(redis_down)) == 1


@pytest.fixture
def redis_server_later(settings, redis_down):
    """A Redis that is down at first and can be started on the same port mid-test."""
    port = closed_port()
    url = f"redis://127.0.0.1:{port}/0"
    settings.CACHES = {"default": {"BACKEND": "core.resilience.ResilientRedisCache", "LOCATION": url}}
    # Breakers live per address for the process: an earlier test's outage on a reused port must not carry over.
    resilience._breakers.clear()
    servers = []

    def start():
        servers.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if caches["default"].reachable():
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    yield start
    for server in servers:
        server.terminate()
        server.wait(timeout=5)


def test_the_cache_returns_to_redis_when_it_answers_again_and_forgets_the_fallback(
        settings, redis_server_later, redis_down):
    settings.REDIS_RETRY_SECONDS = 0
    cache.set("during-outage", "local")
    assert cache.get("during-outage") == "local"

    redis_server_later()
    cache.set("after", "shared")

    assert not caches["default"].breaker.is_open
    assert caches["default"].fallback.get("after") is None
    assert cache.get("during-outage") is None  # nothing from the outage outlives it
    assert cache.get("after") == "shared"
    [error] = outage_errors(redis_down)
    [recovered] = [r for r in redis_down.records if "available again" in r.getMessage()]
    assert recovered.levelno == logging.WARNING


@pytest.fixture
def redis_cache(settings):
    settings.CACHES = redis_caches(socket_connect_timeout=1, socket_timeout=1)
    cache.clear()
    yield
    cache.clear()


def test_every_thread_shares_one_redis_client_and_pool_and_no_call_builds_another(redis_cache, monkeypatch):
    import redis

    built = []
    real_init = redis.Redis.__init__

    def counted_init(self, *args, **kwargs):
        built.append(kwargs.get("connection_pool"))
        real_init(self, *args, **kwargs)

    cache.set("warm", 1)  # the process's client exists from here on
    monkeypatch.setattr(redis.Redis, "__init__", counted_init)

    def worker():
        for n in range(20):
            cache.set(f"k{n}", n)
            cache.get(f"k{n}")
        return caches["default"]._cache.get_client(write=True)

    outcome = race([worker] * 4)
    for n in range(20):
        cache.get(f"k{n}")

    assert not outcome.errors and not built
    assert len({id(client) for client in outcome.results}) == 1
    assert outcome.results[0] is caches["default"]._cache.get_client(write=True)


def test_incr_is_one_round_trip_and_refuses_a_missing_key_without_creating_it(redis_cache):
    client = caches["default"]._cache.get_client(write=True)
    cache.add("counter", 0, timeout=60)
    cache.incr("counter", 0)  # Redis has the script from here on (EVALSHA, no EVAL fallback)
    sent = []
    real = client.connection_pool.get_connection

    def counted(*args, **kwargs):
        sent.append(args)
        return real(*args, **kwargs)

    client.connection_pool.get_connection = counted
    try:
        assert [cache.incr("counter") for _ in range(3)] == [1, 2, 3]
        assert len(sent) == 3
        with pytest.raises(ValueError):
            cache.incr("never-set")
    finally:
        del client.connection_pool.get_connection
    assert cache.get("never-set") is None
    assert 0 < client.ttl(cache.make_and_validate_key("counter")) <= 60
