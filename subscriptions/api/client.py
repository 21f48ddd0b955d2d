"""Who is calling the API and what their plan allows, cached briefly per user.

Every request needs the customer and the plan's limits (scoping, throttles, feature gates). Reading
them costs two queries; the cache makes it one cache round trip, and each process's memo of it
(subscriptions/api/callers.py) none. A plan change made through the API forgets the entry at once (other
processes within `API_CALLERS_CHECK_SECONDS`); other changes show within `API_CLIENT_CACHE_SECONDS`.
"""

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache

from subscriptions.api.callers import caller_remember, caller_remembered, callers_changed
from subscriptions.selectors import customer_for_user, subscription_live_for_customer


@dataclass(frozen=True)
class ApiClient:
    user_id: int
    is_staff: bool
    customer_id: int | None = None
    plan_code: str | None = None
    plan_name: str | None = None
    features: frozenset[str] = field(default_factory=frozenset)
    # 0 means unlimited, as on Plan.
    per_minute: int = 0
    per_hour: int = 0
    per_day: int = 0
    # Plan.usage_batch_max_events (0: the API's maximum).
    batch_max: int = 0
    # Customer.preferred_language: the language of error messages when a request names none.
    language: str = ""

    def has_feature(self, code: str) -> bool:
        return self.is_staff or code in self.features


def _cache_key(user_id: int) -> str:
    return f"api-client:{user_id}"


def api_client_for(*, user) -> ApiClient:
    """The caller's customer and plan limits; staff are unlimited and see everything."""
    if user.is_staff:
        return ApiClient(user_id=user.pk, is_staff=True)
    # The permission, the throttle and the view all ask within one request; the user object is
    # loaded per request by the authentication, so it is the request's own memo.
    client = getattr(user, "_api_client", None)
    if client is not None:
        return client
    key = _cache_key(user.pk)
    client = caller_remembered(key)
    if client is None:
        client = _client_shared(key, user)
    user._api_client = client
    return client


def _client_shared(key: str, user) -> ApiClient:
    """The caller's record from the shared cache, else the database; remembered by this process until the
    shared entry's deadline (stored with it, so no process keeps it longer than the cache does)."""
    cached = cache.get(key)
    if isinstance(cached, tuple):
        until, client = cached
    else:
        until, client = time.time() + settings.API_CLIENT_CACHE_SECONDS, _client_read(user)
        cache.set(key, (until, client), settings.API_CLIENT_CACHE_SECONDS)
    caller_remember(key, client, until=until)
    return client


def _client_read(user) -> ApiClient:
    customer = customer_for_user(user=user)
    if customer is None:
        return ApiClient(user_id=user.pk, is_staff=False)
    subscription = subscription_live_for_customer(customer=customer)
    plan = subscription.plan if subscription else None
    return ApiClient(
        user_id=user.pk, is_staff=False, customer_id=customer.pk,
        plan_code=plan.code if plan else None, plan_name=plan.name if plan else None,
        features=frozenset(plan.features or []) if plan else frozenset(),
        per_minute=plan.rate_limit_per_minute if plan else 0,
        per_hour=plan.rate_limit_per_hour if plan else 0,
        per_day=plan.api_calls_per_day if plan else 0,
        batch_max=plan.usage_batch_max_events if plan else 0,
        language=customer.preferred_language,
    )


def api_client_forget(*, user_id: int | None) -> None:
    """Drop the cached limits after the customer's plan or subscription changed, in the cache and in every
    process's memo (the next request reads them again; the current one keeps what it started with)."""
    if user_id is not None:
        cache.delete(_cache_key(user_id))
        callers_changed()
