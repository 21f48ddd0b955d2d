"""The pipelined Redis channel layer publishes exactly what channels-redis's own `group_send` publishes (same
channel, same host, same bytes), so every subscriber of the library's layer receives a batch as it would
receive the group sends: this pins the coupling to channels-redis's wire format (modules/live_layer.py)."""

import asyncio
import os
import time

import pytest
import redis
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer

from billing_project.tests.redis_support import TEST_REDIS_URL, worker_namespace
from modules.live_layer import PipelinedPubSubChannelLayer

MESSAGES = [
    {"type": "live.event", "topic": "credits", "n": 0, "text": '{"data": {"amount": -1}}'},
    {"type": "live.event", "topic": "payments", "n": 1, "text": "مدفوع ✓", "raw": b"\x00\xff", "none": None},
    {"type": "live.event", "topic": "credits", "n": 2, "nested": {"list": [1, 2.5, True], "big": 10**15}},
]


def layers(*, hosts: list) -> tuple[RedisPubSubChannelLayer, PipelinedPubSubChannelLayer]:
    """The library's layer (the subscriber) and the pipelined one, configured alike."""
    config = {"hosts": hosts, "prefix": f"{worker_namespace()}-layer"}
    return RedisPubSubChannelLayer(**config), PipelinedPubSubChannelLayer(**config)


def sends_to(groups: list[str]) -> list[tuple[str, dict]]:
    return [(group, {**message, "group": group}) for message in MESSAGES for group in groups]


async def test_a_batch_is_received_by_the_library_layer_exactly_as_its_group_sends(pipeline_executes):
    library, pipelined = layers(hosts=[{"address": TEST_REDIS_URL, "socket_connect_timeout": 2}])
    customer, staff, both = [await library.new_channel() for _ in range(3)]
    await library.group_add("wire.customer.7", customer)
    await library.group_add("wire.staff", staff)
    for group in ("wire.customer.7", "wire.staff"):
        await library.group_add(group, both)
    sends = sends_to(["wire.customer.7", "wire.staff"])

    for group, message in sends:
        await library.group_send(group, message)
    await asyncio.to_thread(pipelined.group_send_many, sends)

    assert pipeline_executes == [len(sends)]
    for channel, group in ((customer, "wire.customer.7"), (staff, "wire.staff")):
        expected = [message for to, message in sends if to == group]
        received = [await asyncio.wait_for(library.receive(channel), 5) for _ in range(2 * len(expected))]
        assert received == expected + expected  # group_send's, then the batch's
    across_groups = [await asyncio.wait_for(library.receive(both), 5) for _ in range(2 * len(sends))]
    assert across_groups == [message for _, message in sends] * 2
    await library.flush()


async def test_the_batch_publishes_the_same_bytes_on_the_same_channel_as_group_send():
    library, pipelined = layers(hosts=[TEST_REDIS_URL])
    group = "wire.bytes"
    channel, _ = pipelined.group_channel_and_shard(group)
    subscriber = redis.Redis.from_url(TEST_REDIS_URL).pubsub()
    subscriber.subscribe(channel)
    assert subscriber.get_message(timeout=5)["type"] == "subscribe"  # subscribed before anything is published
    message = {**MESSAGES[1], "group": group}

    await library.group_send(group, message)
    await asyncio.to_thread(pipelined.group_send_many, [(group, message)])

    received, deadline = [], time.monotonic() + 5
    while len(received) < 2 and time.monotonic() < deadline:
        published = await asyncio.to_thread(subscriber.get_message, timeout=1)
        if published is not None:
            received.append((published["channel"].decode(), published["data"]))
    assert received[0] == received[1] == (channel, pipelined.serialize(message))
    subscriber.close()
    await library.flush()


@pytest.mark.parametrize("hosts", [1, 2, 3, 5])
def test_each_group_is_published_to_the_host_and_channel_the_library_uses(hosts):
    config = {"hosts": [f"redis://127.0.0.1:{6000 + n}/0" for n in range(hosts)], "prefix": "wire-prefix"}
    library = RedisPubSubLoopLayer(**config, channel_layer=None)
    pipelined = PipelinedPubSubChannelLayer(**config)

    for n in range(300):
        group = f"topic.credits.customer.{n}"
        channel = library._get_group_channel_name(group)
        assert pipelined.group_channel_and_shard(group) == (channel, library._shards.index(library._get_shard(channel)))


def test_the_prefix_and_hosts_default_as_the_library_s():
    library = RedisPubSubLoopLayer(channel_layer=None)
    pipelined = PipelinedPubSubChannelLayer()

    assert pipelined.group_channel_and_shard("g") == (library._get_group_channel_name("g"), 0)
    [client] = pipelined._clients_of_this_process()
    assert [shard.host for shard in library._shards] == [{"address": "redis://localhost:6379"}]
    assert client.connection_pool.connection_kwargs["host"] == "localhost"


def test_a_host_s_options_reach_its_connections():
    pipelined = PipelinedPubSubChannelLayer(hosts=[{"address": "redis://127.0.0.1:6390/4", "socket_connect_timeout": 2},
                                                   ("127.0.0.1", 6391)])

    first, second = (client.connection_pool.connection_kwargs for client in pipelined._clients_of_this_process())

    assert (first["host"], first["port"], first["db"], first["socket_connect_timeout"]) == ("127.0.0.1", 6390, 4, 2)
    assert (second["host"], second["port"]) == ("127.0.0.1", 6391)


async def test_a_batch_is_one_pipeline_execute_per_host_in_order_within_each(pipeline_executes):
    # Two shards on the same Redis (pub/sub ignores the database number): the routing is the library's.
    library, pipelined = layers(hosts=[TEST_REDIS_URL, TEST_REDIS_URL])
    groups = [f"wire.customer.{n}" for n in range(12)]
    assert {pipelined.group_channel_and_shard(group)[1] for group in groups} == {0, 1}
    channels = {}
    for group in groups:
        channels[group] = await library.new_channel()
        await library.group_add(group, channels[group])
    sends = sends_to(groups)

    await asyncio.to_thread(pipelined.group_send_many, sends)

    assert sorted(pipeline_executes) == sorted(
        sum(1 for group, _ in sends if pipelined.group_channel_and_shard(group)[1] == shard) for shard in (0, 1))
    for group, channel in channels.items():
        received = [await asyncio.wait_for(library.receive(channel), 5) for _ in MESSAGES]
        assert received == [message for to, message in sends if to == group]
    await library.flush()


async def test_a_forked_child_publishes_on_connections_of_its_own():
    """gunicorn --preload forks: a child must not write on the parent's sockets (their answers would mix)."""
    library, pipelined = layers(hosts=[TEST_REDIS_URL])
    channel = await library.new_channel()
    await library.group_add("wire.fork", channel)
    await asyncio.to_thread(pipelined.group_send_many, [("wire.fork", {"type": "live.event", "by": "parent"})])
    parent_clients = pipelined._clients_of_this_process()

    pid = os.fork()
    if pid == 0:  # the child: publish, and say by the exit code whether it used clients of its own
        try:
            pipelined.group_send_many([("wire.fork", {"type": "live.event", "by": "child"})])
            os._exit(0 if pipelined._clients_of_this_process()[0] is not parent_clients[0] else 2)
        except BaseException:
            os._exit(1)
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    await asyncio.to_thread(pipelined.group_send_many, [("wire.fork", {"type": "live.event", "by": "parent again"})])

    assert os.waitstatus_to_exitcode(status) == 0
    received = [(await asyncio.wait_for(library.receive(channel), 5))["by"] for _ in range(3)]
    assert received == ["parent", "child", "parent again"]
    assert pipelined._clients_of_this_process() is parent_clients
    await library.flush()
