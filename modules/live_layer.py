"""The Redis channel layer, with one synchronous way to publish many group messages at once.

`PipelinedPubSubChannelLayer` is channels-redis's pub/sub layer (`RedisPubSubChannelLayer`): subscribing,
receiving and `group_send` stay the library's. It adds `group_send_many`, which the process's live-event
sender (modules/topics_sender.py) calls from its thread with each batch it drained: every copy is
PUBLISHed through a plain `redis.Redis` pipeline, one round trip per Redis host, instead of one awaited
round trip per copy through an event loop and redis.asyncio (docs/decisions.md "The live-event sender
publishes each batch in one pipeline": 245 us of CPU per event before, 35-93 us after).

What goes over the wire must be exactly what `group_send` would publish, so that every subscriber of the
library's layer receives it: this module owns that coupling to channels-redis (pinned to 4.3.0 in
requirements.txt) and modules/tests/test_live_layer.py pins it against the real layer on a real Redis
(same channel, same shard, same bytes, same message received)."""

import os
from collections.abc import Sequence

import redis
import redis.sentinel
from channels_redis.pubsub import RedisPubSubChannelLayer

# Private helpers of channels-redis, relied on so that a host list and a channel name mean here exactly what
# they mean to the library's layer: how CONFIG's "hosts" entries become connection options, and which host
# (shard) a channel lives on. The wire test fails if a new release changes either.
from channels_redis.utils import _consistent_hash, decode_hosts


class PipelinedPubSubChannelLayer(RedisPubSubChannelLayer):
    """channels-redis's pub/sub layer plus `group_send_many`: a batch of group messages in one pipeline per
    host, from synchronous code (no event loop)."""

    def __init__(self, hosts=None, prefix: str = "asgi", **kwargs) -> None:
        # The same arguments reach the library's per-loop layer (`RedisPubSubLoopLayer(hosts=None,
        # prefix="asgi", ...)`), so both read the same hosts and prefix with the same defaults.
        super().__init__(hosts=hosts, prefix=prefix, **kwargs)
        self._publish_prefix = prefix
        self._publish_hosts: list[dict] = decode_hosts(hosts)
        self._publish_clients: list[redis.Redis] = []
        self._publish_clients_pid: int | None = None

    def group_send_many(self, sends: Sequence[tuple[str, dict]]) -> None:
        """PUBLISH each (group, message) as `group_send(group, message)` would, in the order given: one
        pipeline per host, each executed once (one round trip). Raises what redis-py raises; the hosts
        executed before a failing one have published their part. Order holds per host, so a group's
        messages arrive in the order given (each group lives on one host)."""
        clients = self._clients_of_this_process()
        pipelines: dict[int, redis.client.Pipeline] = {}
        serialize = self.serialize
        for group, message in sends:
            channel, shard = self.group_channel_and_shard(group)
            pipeline = pipelines.get(shard)
            if pipeline is None:
                pipeline = pipelines[shard] = clients[shard].pipeline(transaction=False)
            pipeline.publish(channel, serialize(message))
        for pipeline in pipelines.values():
            pipeline.execute()

    def group_channel_and_shard(self, group: str) -> tuple[str, int]:
        """The Redis channel a group's messages are published on and the index of its host, as the
        library's `RedisPubSubLoopLayer._get_group_channel_name` and `_get_shard` compute them."""
        channel = f"{self._publish_prefix}__group__{group}"
        return channel, _consistent_hash(channel, len(self._publish_hosts))

    def _clients_of_this_process(self) -> list[redis.Redis]:
        # A forked child (gunicorn --preload) builds its own: the parent's pools hold the parent's sockets.
        # (redis-py's pools would also start afresh on a pid change; this keeps it obvious and per layer.)
        # Only the sender's thread publishes, and a `redis.Redis` is thread-safe anyway.
        if self._publish_clients_pid != os.getpid():
            self._publish_clients = [redis.Redis(connection_pool=_sync_pool(host)) for host in self._publish_hosts]
            self._publish_clients_pid = os.getpid()
        return self._publish_clients


def _sync_pool(host: dict) -> redis.ConnectionPool:
    """A host entry's connection pool, as `channels_redis.utils.create_pool` builds its asyncio one (every
    option of the entry, e.g. `socket_connect_timeout`, goes to the pool), with redis-py's sync classes."""
    host = dict(host)
    if "address" in host:
        return redis.ConnectionPool.from_url(host.pop("address"), **host)
    master_name = host.pop("master_name", None)
    if master_name is not None:
        sentinel = redis.sentinel.Sentinel(host.pop("sentinels"), sentinel_kwargs=host.pop("sentinel_kwargs", None))
        return redis.sentinel.SentinelConnectionPool(master_name, sentinel, **host)
    return redis.ConnectionPool(**host)
