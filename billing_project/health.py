"""/healthz: each enabled module's health (modules.health), for load balancers and operators."""

from django.conf import settings
from django.http import JsonResponse

from modules.health import modules_health


def healthz(request):
    """200 while every core module is up (degraded ones named), 503 when one is down; `?deep=1` also
    makes one cheap authenticated call per payment rail. Answers within MODULES_HEALTH_TIMEOUT seconds
    (plus the response itself) whatever hangs."""
    deep = request.GET.get("deep") in ("1", "true")
    summary = modules_health(deep=deep, budget=settings.MODULES_HEALTH_TIMEOUT)
    return JsonResponse({"status": summary.status, "modules": summary.modules}, status=summary.http_status)
