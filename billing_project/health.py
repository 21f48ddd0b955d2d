from django.core.cache import caches
from django.db import connection
from django.http import JsonResponse

from core.resilience import ResilientRedisCache, channel_layer_breaker
from payments.providers import providers_installed


def _provider_sections() -> dict[str, dict]:
    """Each installed payment rail's own report, under the rail's code."""
    sections = {}
    for provider in providers_installed():
        health = provider.health()
        sections[provider.code] = {"status": health.status, **health.details, "problems": list(health.problems)}
    return sections


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
    """Liveness and database reachability for load balancers and operators, and the payment rails' and
    Redis's state."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        database = {"status": "ok", "vendor": connection.vendor}
    except Exception as exc:  # any driver error means "down"; the detail goes in the body
        database = {"status": "error", "vendor": connection.vendor, "error": str(exc)[:200]}
    healthy = database["status"] == "ok"
    providers = _provider_sections() if healthy else {p.code: {"status": "unknown"} for p in providers_installed()}
    redis = _redis_section()
    sections = [*providers.values(), redis]
    status = "ok" if healthy and all(section["status"] == "ok" for section in sections) else "degraded"
    return JsonResponse({"status": status, "database": database, **providers, "redis": redis},
                        status=200 if healthy else 503)
