"""A Redis that is down, for the tests of every app: settings pointing the cache and the channel layer at
a loopback port nobody listens on, exactly as production settings look with REDIS_URL set."""

import socket


def closed_port() -> int:
    """A loopback port that was free a moment ago; each call gives a new one, so every test starts with
    breakers (which are per address) that have never seen it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def point_redis_at_closed_port(settings) -> str:
    """Production's Redis settings (cache and channel layer) with a Redis that refuses connections."""
    url = f"redis://127.0.0.1:{closed_port()}/0"
    settings.REDIS_URL = url
    settings.CACHES = {"default": {"BACKEND": "core.resilience.ResilientRedisCache", "LOCATION": url,
                                   "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [{"address": url, "socket_connect_timeout": 2}]}}}
    return url
