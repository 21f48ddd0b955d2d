"""Plan rate limits: requests per minute, per hour and per day from the customer's current plan.

Fixed windows aligned on the clock, counted in Django's cache (Redis in production, so every worker
process shares the counts): one round trip per window on Redis (`core.resilience.cache_window_incr`, an
INCR that sets the expiry on the first hit), `add` then `incr` on the local-memory cache. The tightest
window's state is left on the request for the X-RateLimit-* headers.
"""

import time
from dataclasses import dataclass

from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

from core.resilience import cache_window_incr
from subscriptions.api.client import api_client_for

WINDOWS = (("minute", 60), ("hour", 3600), ("day", 86400))


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    # Seconds until the window that limits the caller starts again.
    reset: int


class PlanRateThrottle(BaseThrottle):
    def __init__(self):
        self.wait_seconds: float | None = None

    def allow_request(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated or user.is_staff:
            return True
        client = api_client_for(user=user)
        if client.customer_id is None:
            return True
        now = time.time()
        tightest: RateLimitState | None = None
        exceeded: list[RateLimitState] = []
        limits = {"minute": client.per_minute, "hour": client.per_hour, "day": client.per_day}
        for name, size in WINDOWS:
            limit = limits[name]
            if not limit:
                continue
            window = int(now // size)
            key = f"ratelimit:{client.customer_id}:{name}:{window}"
            count = cache_window_incr(caches["default"], key=key, timeout=size + 5)
            state = RateLimitState(limit=limit, remaining=max(limit - count, 0),
                                   reset=max(int((window + 1) * size - now), 1))
            if count > limit:
                exceeded.append(state)
            if tightest is None or state.remaining < tightest.remaining:
                tightest = state
        if exceeded:
            # The caller may come back when every exceeded window has rolled over.
            tightest = max(exceeded, key=lambda s: s.reset)
            self.wait_seconds = tightest.reset
        request.rate_limit = tightest
        return not exceeded

    def wait(self) -> float | None:
        return self.wait_seconds
