"""Redis for the tests of every app: the real one (TEST_REDIS_URL) scoped to this pytest process, and a
Redis that is down (settings pointing the cache and the channel layer at a loopback port nobody listens on,
exactly as production settings look with REDIS_URL set).

Under pytest-xdist several pytest processes share one Redis database: each keeps to a namespace of its own
(cache keys, channel-layer groups, and the same for the servers it starts), so a test never reads another
worker's keys or events, and emptying the cache empties this worker's keys only."""

import contextlib
import os
import socket
import threading
from urllib.parse import urlsplit

from django.core.cache.backends.redis import RedisCache

from core.resilience import ResilientRedisCache

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def worker_namespace() -> str:
    """This pytest process's prefix in the shared Redis: xdist's worker id (gw0, gw1...), or `main`."""
    return f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


class _ClearsOwnKeys:
    """Django's Redis cache empties itself with FLUSHDB, which would wipe the keys of every other worker
    (and of the servers they run) in the middle of their tests: this deletes the keys under its prefix."""

    def clear(self):
        client = self._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{self.key_prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
        fallback = getattr(self, "fallback", None)
        if fallback is not None:
            fallback.clear()


class WorkerRedisCache(_ClearsOwnKeys, ResilientRedisCache):
    """Production's cache (core.resilience.ResilientRedisCache), whose clear() keeps to this worker's keys."""


class WorkerDjangoRedisCache(_ClearsOwnKeys, RedisCache):
    """Django's own Redis cache, whose clear() keeps to this worker's keys."""


def redis_caches(*, backend: type = WorkerRedisCache, **options) -> dict:
    """CACHES for the real test Redis under this worker's key prefix."""
    return {"default": {"BACKEND": f"{backend.__module__}.{backend.__qualname__}", "LOCATION": TEST_REDIS_URL,
                        "KEY_PREFIX": worker_namespace(), **({"OPTIONS": options} if options else {})}}


def redis_channel_layers(*, prefix: str = "", address: str = TEST_REDIS_URL) -> dict:
    """CHANNEL_LAYERS as production has them with REDIS_URL set, on the test Redis under this worker's prefix
    (pub/sub channels ignore the database number, so the prefix is what keeps workers' events apart)."""
    return {"default": {"BACKEND": "modules.live_layer.PipelinedPubSubChannelLayer",
                        "CONFIG": {"hosts": [{"address": address}], "prefix": prefix or worker_namespace()}}}


class HeldRedis:
    """The test Redis behind a loopback proxy that holds every byte a client sends until `release()`: a Redis
    that accepts connections and then stops answering, which comes back when released. `started` is set when
    a client first sends something (it now waits for an answer)."""

    def __init__(self) -> None:
        upstream = urlsplit(TEST_REDIS_URL)
        self._upstream = (upstream.hostname or "127.0.0.1", upstream.port or 6379)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}{upstream.path}"
        self.started, self._released = threading.Event(), threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        self._closed = False
        threading.Thread(target=self._accept, name="held-redis", daemon=True).start()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        """Redis gone: every connection is closed, held bytes are never forwarded, new connections refused."""
        self._closed = True
        for sock in self._sockets:
            # shutdown first: a close alone wakes neither a thread blocked in accept() nor one in recv().
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.release()

    def __enter__(self) -> "HeldRedis":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if self._closed:
                client.close()
                return
            server = socket.create_connection(self._upstream)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, held: bool) -> None:
        try:
            while data := source.recv(65536):
                if held:
                    self.started.set()
                    self._released.wait()
                target.sendall(data)
        except OSError:
            pass
        finally:
            source.close()
            target.close()


def redis_server_environment() -> dict[str, str]:
    """The environment a server or command this test starts needs to share this worker's Redis namespace."""
    return {"REDIS_URL": TEST_REDIS_URL, "CHANNEL_LAYER_PREFIX": worker_namespace(),
            "CACHE_KEY_PREFIX": worker_namespace()}


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
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "modules.live_layer.PipelinedPubSubChannelLayer",
                                           "CONFIG": {"hosts": [{"address": url, "socket_connect_timeout": 2}]}}}
    return url
