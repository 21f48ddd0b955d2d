"""Staying up while Redis is down: a per-process circuit breaker and the cache backend built on it.

Redis is the cache (plan limits, rate-limit counters, webhook rejection counts) and the channel layer
(live broadcasts); neither is the source of truth. When it is unreachable the app keeps answering:
the cache falls back to this process's local memory and broadcasts are dropped (docs/decisions.md).

A breaker opens on the first failure and logs one error for the whole outage; while it is open callers
skip Redis at once instead of paying a connection attempt per request, and one caller per
`REDIS_RETRY_SECONDS` probes Redis again. The first success closes it and logs the recovery.
"""

import logging
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What "Redis is unavailable" looks like from redis-py: refused, reset, timed out, loading, read-only
# replica, out of memory. OSError covers sockets failing below redis-py's own wrapping.
REDIS_UNAVAILABLE = (RedisError, OSError)

# The fallback is one process's memory: big enough for every active customer's counters and limits.
FALLBACK_MAX_ENTRIES = 50_000


@dataclass
class CircuitBreaker:
    """Whether a dependency is worth calling, shared by every thread of the process."""

    name: str
    # What the app does instead while the breaker is open, for the outage's one log line.
    meanwhile: str
    open_since: float | None = None
    next_probe_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def is_open(self) -> bool:
        return self.open_since is not None

    def allows_call(self) -> bool:
        """True when closed; when open, True for one caller per retry interval (the probe)."""
        if self.open_since is None:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self.next_probe_at:
                return False
            self.next_probe_at = now + settings.REDIS_RETRY_SECONDS
            return True

    def record_failure(self, error: BaseException) -> None:
        with self._lock:
            self.next_probe_at = time.monotonic() + settings.REDIS_RETRY_SECONDS
            if self.open_since is not None:
                return
            self.open_since = time.monotonic()
        logger.error("%s is unavailable (%s: %s); until it answers again %s (retrying every %s s)",
                     self.name, type(error).__name__, error, self.meanwhile, settings.REDIS_RETRY_SECONDS)

    def record_success(self) -> bool:
        """Close the breaker; True when this call ended an outage."""
        if self.open_since is None:
            return False
        with self._lock:
            if self.open_since is None:
                return False
            down_for = time.monotonic() - self.open_since
            self.open_since = None
        logger.warning("%s is available again after %.0f s", self.name, down_for)
        return True


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def circuit_breaker(name: str, *, meanwhile: str) -> CircuitBreaker:
    """The process's one breaker of that name (Django builds cache backends per thread)."""
    with _breakers_lock:
        if name not in _breakers:
            _breakers[name] = CircuitBreaker(name=name, meanwhile=meanwhile)
        return _breakers[name]


def channel_layer_breaker() -> CircuitBreaker:
    """The breaker of live broadcasts (payments.live.broadcast) through the configured channel layer's hosts."""
    hosts = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts", [])
    addresses = [str(host.get("address") if isinstance(host, dict) else host) for host in hosts]
    return circuit_breaker(f"Redis channel layer at {', '.join(_redacted(a) for a in addresses)}",
                           meanwhile="live broadcasts are dropped")


class SharedRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client that keeps its `redis.Redis` clients: Django's builds a new one for every
    cache call (about 5% of an API request's CPU). A `redis.Redis` is safe to share between threads (each
    command borrows a connection from the pool), and its pool starts afresh in a forked child."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}
        self._clients_lock = threading.Lock()

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            with self._clients_lock:
                client = self._clients.get(index)
                if client is None:
                    pool = self._pools.get(index) or self._pools.setdefault(
                        index, self._pool_class.from_url(self._servers[index], **self._pool_options))
                    client = self._clients[index] = self._client(connection_pool=pool)
        return client

    def incr(self, key, delta):
        """Django's is EXISTS then INCRBY: two round trips, and a key that expires between them comes back
        as a counter with no expiry (a rate-limit window that never ends). One script does both atomically."""
        value = self._incr_existing(keys=[key], args=[delta], client=self.get_client(key, write=True))
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    @cached_property
    def _incr_existing(self):
        return self.get_client(write=True).register_script(INCR_EXISTING_SCRIPT)


    def incr_window(self, key, timeout: int) -> int:
        """Count a hit on a fixed-window counter that expires `timeout` seconds after its first hit: one
        round trip (INCR, and EXPIRE on the first hit, in one script) instead of ADD, EXISTS and INCRBY."""
        return self._incr_window(keys=[key], args=[timeout], client=self.get_client(key, write=True))

    @cached_property
    def _incr_window(self):
        return self.get_client(write=True).register_script(INCR_WINDOW_SCRIPT)


INCR_WINDOW_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""

# INCRBY only a key that exists (returns nil otherwise), in one round trip.
INCR_EXISTING_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""

_shared_clients: dict[tuple, SharedRedisCacheClient] = {}
_shared_clients_lock = threading.Lock()


def shared_redis_cache_client(servers: list[str], options: dict) -> SharedRedisCacheClient:
    """The process's one client (and so one connection pool) per Redis location and options. Django builds
    a cache backend per thread, each with pools of its own; under daphne's thread per request that was a
    pool per thread."""
    key = (tuple(servers), repr(sorted(options.items())))
    with _shared_clients_lock:
        if key not in _shared_clients:
            _shared_clients[key] = SharedRedisCacheClient(servers, **options)
        return _shared_clients[key]


class ResilientRedisCache(RedisCache):
    """Django's Redis cache that falls back to local memory while Redis is unreachable.

    The fallback is per process: rate limits are then counted per process and a forgotten plan-limit
    entry is forgotten only in this process (other processes' entries expire within
    API_CLIENT_CACHE_SECONDS). It is emptied when Redis answers again, so nothing it held outlives
    the outage.
    """

    def __init__(self, server, params):
        super().__init__(server, params)
        # Keyed by the Redis location so every thread's instance of this backend shares one fallback.
        self.fallback = LocMemCache(f"redis-fallback:{server}", {
            **params, "OPTIONS": {"MAX_ENTRIES": FALLBACK_MAX_ENTRIES}})
        self.breaker = circuit_breaker(f"Redis cache at {_redacted(server)}",
                                       meanwhile="each process caches in its own memory")

    @cached_property
    def _cache(self):
        return shared_redis_cache_client(self._servers, self._options)

    def _call(self, method: str, *args, **kwargs):
        if self.breaker.allows_call():
            try:
                result = getattr(super(), method)(*args, **kwargs)
            except REDIS_UNAVAILABLE as error:
                self.breaker.record_failure(error)
            else:
                if self.breaker.record_success():
                    self.fallback.clear()
                return result
        return getattr(self.fallback, method)(*args, **kwargs)

    def add(self, *args, **kwargs):
        return self._call("add", *args, **kwargs)

    def get(self, *args, **kwargs):
        return self._call("get", *args, **kwargs)

    def set(self, *args, **kwargs):
        return self._call("set", *args, **kwargs)

    def touch(self, *args, **kwargs):
        return self._call("touch", *args, **kwargs)

    def delete(self, *args, **kwargs):
        return self._call("delete", *args, **kwargs)

    def get_many(self, *args, **kwargs):
        return self._call("get_many", *args, **kwargs)

    def has_key(self, *args, **kwargs):
        return self._call("has_key", *args, **kwargs)

    def incr(self, *args, **kwargs):
        return self._call("incr", *args, **kwargs)

    def set_many(self, *args, **kwargs):
        return self._call("set_many", *args, **kwargs)

    def delete_many(self, *args, **kwargs):
        return self._call("delete_many", *args, **kwargs)

    def clear(self):
        return self._call("clear")

    def incr_window(self, key, timeout: int) -> int:
        """See SharedRedisCacheClient.incr_window; while Redis is down, counted in the local fallback."""
        if self.breaker.allows_call():
            try:
                result = self._cache.incr_window(self.make_and_validate_key(key), timeout)
            except REDIS_UNAVAILABLE as error:
                self.breaker.record_failure(error)
            else:
                if self.breaker.record_success():
                    self.fallback.clear()
                return result
        return cache_window_incr(self.fallback, key=key, timeout=timeout)

    def reachable(self) -> bool:
        """For /healthz: ping Redis unless the breaker says it is down and no probe is due."""
        if self.breaker.allows_call():
            try:
                self._cache.get_client(write=False).ping()
            except REDIS_UNAVAILABLE as error:
                self.breaker.record_failure(error)
            else:
                if self.breaker.record_success():
                    self.fallback.clear()
        return not self.breaker.is_open


def cache_window_incr(backend, *, key: str, timeout: int) -> int:
    """Count a hit on a fixed-window counter in any cache backend: one round trip on ResilientRedisCache,
    `add` then `incr` on the others (local memory, where a round trip costs nothing)."""
    if isinstance(backend, ResilientRedisCache):
        return backend.incr_window(key, timeout)
    backend.add(key, 0, timeout=timeout)
    try:
        return backend.incr(key)
    except ValueError:  # evicted between add and incr: start the window again
        backend.set(key, 1, timeout=timeout)
        return 1


def _redacted(location: str) -> str:
    """A Redis URL without its password, for log lines."""
    scheme, sep, rest = location.partition("://")
    if "@" not in rest:
        return location
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"
