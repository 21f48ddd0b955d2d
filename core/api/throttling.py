"""Sign-in attempts per username and per client address (API token and admin login alike).

Fixed windows aligned on the clock, counted in Django's cache (Redis in production, so every worker
process shares the counts). `cache.add` then `cache.incr` is atomic on Redis and on the local-memory
cache. The plan's request limits, which need the caller's plan, are subscriptions.api.throttling.
"""

import hashlib
import ipaddress
import math
import unicodedata
from collections.abc import Mapping

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


def submitted_username(request) -> str | None:
    """The username a sign-in attempt names, folded so that case and Unicode variants of one name
    share one budget (a DRF request's parsed body, or a plain Django form post)."""
    data = request.data if isinstance(request, Request) else request.POST
    value = data.get("username") if isinstance(data, Mapping) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # DRF's CharField signs in {"username": 123} as "123"
    if not isinstance(value, str) or not value.strip():
        return None
    return unicodedata.normalize("NFKC", value).strip().casefold()


def client_address(request) -> str:
    """The caller's address: REMOTE_ADDR, or with LOGIN_THROTTLE_TRUSTED_PROXIES reverse proxies in
    front, the X-Forwarded-For entry the outermost one added (anything further left the client wrote
    itself). An IPv6 caller is counted per /64, the block one subscriber gets."""
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.LOGIN_THROTTLE_TRUSTED_PROXIES
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if proxies > 0 and forwarded:
        address = forwarded[-min(proxies, len(forwarded))]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginRateThrottle(SimpleRateThrottle):
    """Sign-in attempts per fixed clock window, counted with an atomic `cache.add` + `cache.incr` so
    concurrent guesses cannot slip past the limit (DRF's history list is read, then written). Every
    attempt counts, right or wrong: a throttled caller is refused even the right password."""

    rate_setting: str

    def __init__(self):
        self.wait_seconds: int | None = None
        super().__init__()

    def get_rate(self) -> str | None:
        return getattr(settings, self.rate_setting) or None

    def ident(self, request) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request, view) -> str | None:
        ident = self.ident(request)
        if ident is None:
            return None
        digest = hashlib.sha256(ident.encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}

    def allow_request(self, request, view) -> bool:
        key = self.get_cache_key(request, view) if self.rate else None
        if key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        key = f"{key}:{window}"
        self.cache.add(key, 0, timeout=self.duration + 5)
        try:
            count = self.cache.incr(key)
        except ValueError:  # evicted between add and incr: start the window again
            self.cache.set(key, 1, timeout=self.duration + 5)
            count = 1
        if count <= self.num_requests:
            return True
        self.wait_seconds = max(math.ceil((window + 1) * self.duration - now), 1)
        return False

    def wait(self) -> int | None:
        return self.wait_seconds


class LoginUsernameRateThrottle(LoginRateThrottle):
    scope = "login_username"
    rate_setting = "LOGIN_THROTTLE_USERNAME_RATE"

    def ident(self, request) -> str | None:
        return submitted_username(request)


class LoginIPRateThrottle(LoginRateThrottle):
    scope = "login_ip"
    rate_setting = "LOGIN_THROTTLE_IP_RATE"

    def ident(self, request) -> str | None:
        return client_address(request)


LOGIN_THROTTLES = (LoginUsernameRateThrottle, LoginIPRateThrottle)


def login_attempt_wait(*, request) -> int | None:
    """Count a sign-in attempt against every login throttle (as DRF does for the token endpoint):
    None when it may go ahead, else the seconds until the tightest refusal lifts."""
    waits = [t.wait() or 1 for t in (cls() for cls in LOGIN_THROTTLES) if not t.allow_request(request, None)]
    return max(waits) if waits else None
