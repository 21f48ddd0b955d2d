"""The process's live-event sender: events reach their groups in order through Redis without the caller
waiting; a full queue drops new events (counted, logged); Redis down drops them without an error for the
caller; events go out only for committed work."""

import asyncio
import logging
import os
import sys

import pytest
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings as django_settings

from billing_project.tests.redis_support import (
    TEST_REDIS_URL,
    HeldRedis,
    point_redis_at_closed_port,
    redis_channel_layers,
    redis_server_environment,
    worker_namespace,
)
from core.resilience import channel_layer_breaker
from modules.topics_sender import LiveEvent, LiveSender


@pytest.fixture
def redis_layer(settings):
    settings.CHANNEL_LAYERS = redis_channel_layers()


@pytest.fixture
def stuck_redis(settings):
    """The channel layer's Redis stops answering (it holds every command) until the test releases it."""
    with HeldRedis() as held:
        settings.CHANNEL_LAYERS = redis_channel_layers(address=held.url)
        yield held


def event(n: int, group: str = "sender-test.staff") -> LiveEvent:
    return LiveEvent(groups=(group,), message={"type": "live.event", "topic": "sender-test", "n": n})


async def test_events_reach_their_groups_in_the_order_they_were_queued(redis_layer):
    layer = get_channel_layer()
    staff, customer = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("sender-test.staff", staff)
    await layer.group_add("sender-test.customer.7", customer)
    sender = LiveSender()

    queued = [sender.submit(LiveEvent(groups=("sender-test.customer.7", "sender-test.staff"),
                                      message={"type": "live.event", "n": n})) for n in range(20)]

    to_staff = [await asyncio.wait_for(layer.receive(staff), 5) for _ in range(20)]
    to_customer = [await asyncio.wait_for(layer.receive(customer), 5) for _ in range(20)]
    assert queued == [True] * 20
    assert [m["n"] for m in to_staff] == [m["n"] for m in to_customer] == list(range(20))
    assert {m["group"] for m in to_staff} == {"sender-test.staff"}
    assert await asyncio.to_thread(sender.flush, timeout=5)
    assert (sender.counts.sent, sender.counts.dropped, sender.counts.failed) == (20, 0, 0)


def test_a_full_queue_drops_new_events_counts_them_and_logs_the_first(settings, stuck_redis, caplog):
    settings.LIVE_SENDER_QUEUE_SIZE = 3
    sender = LiveSender()
    sender.submit(event(0))
    assert stuck_redis.started.wait(5)  # the thread holds event 0 and waits on Redis

    with caplog.at_level(logging.WARNING, logger="modules.topics_sender"):
        outcomes = [sender.submit(event(n)) for n in range(1, 8)]

    assert outcomes == [True] * 3 + [False] * 4
    assert sender.counts.dropped == 4
    [warning] = [r for r in caplog.records if r.name == "modules.topics_sender"]
    assert "queue full" in warning.getMessage() and "1 dropped" in warning.getMessage()
    assert not sender.flush(timeout=0.05)
    stuck_redis.release()
    assert sender.flush(timeout=5)
    assert sender.counts.sent == 4


def test_submitting_never_waits_for_a_redis_that_stopped_answering(stuck_redis):
    sender = LiveSender()

    outcomes = [sender.submit(event(n)) for n in range(50)]

    assert stuck_redis.started.wait(5)
    assert outcomes == [True] * 50 and sender.counts.sent == 0
    stuck_redis.release()
    assert sender.flush(timeout=5)
    assert sender.counts.sent == 50


async def test_what_queued_while_redis_was_busy_goes_out_in_one_pipeline_in_order(stuck_redis, pipeline_executes):
    """A batch is one round trip to Redis: the thread holds event 0 on a Redis that stopped answering, the
    next 40 events queue up meanwhile, and they then leave in a single pipeline execute (80 copies), in order,
    received by a subscriber of channels-redis's own layer."""
    library_layer = RedisPubSubChannelLayer(hosts=[TEST_REDIS_URL], prefix=worker_namespace())
    staff, customer = await library_layer.new_channel(), await library_layer.new_channel()
    await library_layer.group_add("sender-test.staff", staff)
    await library_layer.group_add("sender-test.customer.7", customer)
    sender = LiveSender()
    copies = ("sender-test.customer.7", "sender-test.staff")

    sender.submit(LiveEvent(groups=copies, message={"type": "live.event", "n": 0}))
    assert await asyncio.to_thread(stuck_redis.started.wait, 5)
    for n in range(1, 41):
        sender.submit(LiveEvent(groups=copies, message={"type": "live.event", "n": n}))
    stuck_redis.release()

    to_customer = [await asyncio.wait_for(library_layer.receive(customer), 5) for _ in range(41)]
    to_staff = [await asyncio.wait_for(library_layer.receive(staff), 5) for _ in range(41)]
    assert await asyncio.to_thread(sender.flush, timeout=5)
    assert pipeline_executes == [2, 80]
    assert to_customer == [{"type": "live.event", "n": n, "group": "sender-test.customer.7"} for n in range(41)]
    assert to_staff == [{"type": "live.event", "n": n, "group": "sender-test.staff"} for n in range(41)]
    assert (sender.counts.sent, sender.counts.dropped, sender.counts.failed) == (41, 0, 0)
    await library_layer.flush()


def test_a_lone_event_waits_the_linger_for_others_to_share_its_pipeline(settings, redis_layer, pipeline_executes):
    settings.LIVE_SENDER_LINGER_SECONDS = 0.5  # far longer than queueing the other nine takes
    sender = LiveSender()

    for n in range(10):
        sender.submit(event(n))

    assert sender.flush(timeout=5)
    assert pipeline_executes == [10]
    assert sender.counts.sent == 10


def test_a_failed_pipeline_counts_the_whole_batch_as_failed_and_opens_the_breaker(settings, stuck_redis, caplog):
    """Redis goes away while a batch waits for its answer, and stays away for the next batch (probed at once):
    nothing is known to be sent, so each batch counts as failed, all of it; the outage is logged once."""
    settings.REDIS_RETRY_SECONDS = 0
    sender = LiveSender()
    sender.submit(event(0))
    assert stuck_redis.started.wait(5)
    for n in range(1, 6):
        sender.submit(event(n))  # the next batch, queued behind the held one

    with caplog.at_level(logging.ERROR):
        stuck_redis.close()
        assert sender.flush(timeout=30)

    assert channel_layer_breaker().is_open
    assert (sender.counts.sent, sender.counts.dropped, sender.counts.failed) == (0, 0, 6)
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Redis channel layer" in error.getMessage()


def test_redis_down_drops_events_opens_the_breaker_and_logs_the_outage_once(settings, caplog):
    point_redis_at_closed_port(settings)
    settings.REDIS_RETRY_SECONDS = 3600
    sender = LiveSender()

    with caplog.at_level(logging.INFO):
        assert sender.submit(event(0))
        assert sender.flush(timeout=10)
        for n in range(1, 30):
            sender.submit(event(n))
        assert sender.flush(timeout=10)

    assert channel_layer_breaker().is_open
    assert sender.counts.sent == 0 and sender.counts.failed + sender.counts.dropped == 30
    assert sender.counts.dropped >= 29  # after the failure, dropped without trying until a probe is due
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Redis channel layer" in error.getMessage() and "live broadcasts are dropped" in error.getMessage()


@pytest.mark.slow
async def test_a_process_exiting_right_after_queueing_sends_every_event_first(settings):
    """The exit flush: a process that queues events and ends at once (a worker recycled after a request)
    still sends them, in order, before it is gone."""
    prefix = f"sender-exit-{os.getpid()}"
    settings.CHANNEL_LAYERS = redis_channel_layers(prefix=prefix)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("sender-test.staff", channel)
    script = ("import django; django.setup()\n"
              "from modules.topics_sender import LiveEvent, live_event_publish\n"
              "for n in range(200):\n"
              "    event = LiveEvent(groups=('sender-test.staff',), message={'type': 'live.event', 'n': n})\n"
              "    live_event_publish(event)\n")
    env = {**os.environ, **redis_server_environment(), "CHANNEL_LAYER_PREFIX": prefix,
           "DJANGO_SETTINGS_MODULE": "billing_project.settings"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, env=env, cwd=django_settings.BASE_DIR)

    assert await asyncio.wait_for(process.wait(), 60) == 0
    received = [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(200)]
    assert received == list(range(200))
