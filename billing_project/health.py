from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import JsonResponse

from core.resilience import ResilientRedisCache, channel_layer_breaker
from payments.webhooks.selectors import stripe_event_failed_recent_count, webhook_rejection_count


def _stripe_section() -> dict:
    """Whether Stripe can be used and whether its webhooks are arriving healthy.

    Degraded (reported, but the HTTP status stays 200 so load balancers keep the instance: card payments
    are not what keeps the app alive) when the API key is set but the signing secret is missing, when
    deliveries failed verification in the last hour (a wrong or rotated secret fails silently otherwise),
    or when stored events failed processing in the last hour.
    """
    configured = bool(settings.STRIPE_SECRET_KEY)
    secret_missing = not settings.STRIPE_WEBHOOK_SECRET
    rejected = webhook_rejection_count()
    failed = stripe_event_failed_recent_count()
    problems = []
    if configured and secret_missing:
        problems.append("STRIPE_WEBHOOK_SECRET is missing: every webhook is refused")
    if rejected:
        problems.append(f"{rejected} webhook deliveries failed verification in the last hour")
    if failed:
        problems.append(f"{failed} webhook events failed processing in the last hour")
    return {"status": "degraded" if problems else "ok", "configured": configured,
            "webhook_secret_missing": secret_missing, "verification_failures_last_hour": rejected,
            "events_failed_last_hour": failed, "problems": problems}


def _redis_section() -> dict:
    """Whether Redis (cache and channel layer) answers. Degraded is reported with HTTP 200: every request
    is still served (the cache falls back to local memory, only live broadcasts are lost), and every
    instance shares the same Redis, so taking this one out of the load balancer would help nobody.
    """
    cache = caches["default"]
    if not isinstance(cache, ResilientRedisCache):
        return {"status": "ok", "configured": False, "problems": []}
    problems = []
    if not cache.reachable():
        problems.append("the cache is unreachable: this process caches in local memory and counts rate "
                        "limits per process")
    if channel_layer_breaker().is_open:
        problems.append("the channel layer is unreachable: live broadcasts are dropped")
    return {"status": "degraded" if problems else "ok", "configured": True, "problems": problems}


def healthz(request):
    """Liveness and database reachability for load balancers and operators, and Stripe's and Redis's state."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        database = {"status": "ok", "vendor": connection.vendor}
    except Exception as exc:  # any driver error means "down"; the detail goes in the body
        database = {"status": "error", "vendor": connection.vendor, "error": str(exc)[:200]}
    healthy = database["status"] == "ok"
    stripe = _stripe_section() if healthy else {"status": "unknown"}
    redis = _redis_section()
    status = "ok" if healthy and stripe["status"] == "ok" and redis["status"] == "ok" else "degraded"
    return JsonResponse({"status": status, "database": database, "stripe": stripe, "redis": redis},
                        status=200 if healthy else 503)
