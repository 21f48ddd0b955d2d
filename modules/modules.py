"""The kernel's own module: the database and the cache every other module stands on."""

from django.core.cache import caches
from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.resilience import ResilientRedisCache
from modules.definitions import HealthReport, ModuleDefinition


def platform_health(deep: bool) -> HealthReport:
    """Down when the database does not answer (nothing works without it); degraded when the Redis cache
    is unreachable (each process then caches in its own memory, docs/decisions.md)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any driver error means down; the detail goes in the message
        message = _("the database does not answer: %(error)s") % {"error": error}
        return HealthReport(status="down", message=message[:300],
                            details={"database": connection.vendor})
    cache = caches["default"]
    details = {"database": connection.vendor, "cache": "redis" if isinstance(cache, ResilientRedisCache) else "local"}
    if isinstance(cache, ResilientRedisCache) and not cache.reachable():
        return HealthReport(status="degraded", details=details,
                            message=_("the Redis cache is unreachable: this process caches in local memory and "
                                      "counts rate limits per process"))
    return HealthReport(status="ok", details=details)


MODULES = [
    ModuleDefinition(
        code="platform", name=gettext_lazy("Platform"), version="1.0.0", is_core=True, is_internal=True,
        description=gettext_lazy("The database, the cache and the module switchboard itself."),
        permissions=("modules.view_modulestate", "modules.switch_modulestate"),
        admin_models=(), health_check=platform_health,
    ),
]
